/**
 * Parley in a terminal: `npm run chat -- --user alice [--server URL] [--token JWT]`.
 * A line-based UI on node:readline over the SDK; /help lists the commands.
 * This file is the only one that touches the process (stdin, stdout, exit).
 */
import readline from 'node:readline';
import WebSocket from 'ws';
import { ParleyClient, type WebSocketFactory } from '../sdk/index.js';
import { fileStorage } from '../sdk/node-storage.js';
import { ParleyHttp } from './http.js';
import { parseOptions, positionFile, USAGE, websocketUrl } from './options.js';
import { makeStyle, Renderer } from './render.js';
import { TerminalSession, type Screen } from './session.js';
import { TerminalToken } from './token.js';

const parsed = parseOptions(process.argv.slice(2), process.env);
if ('help' in parsed) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if ('error' in parsed) {
  process.stderr.write(`${parsed.error}\n${USAGE}\n`);
  process.exit(2);
}
const options = parsed;
const out = process.stdout;
const terminal = Boolean(process.stdin.isTTY && out.isTTY);
const color = options.color ?? Boolean(out.isTTY && !process.env.NO_COLOR);
const renderer = new Renderer(options.user, makeStyle(color), () => out.columns || 100);

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

// ---- sign in ---------------------------------------------------------------

/** The given token, or a dev token renewed a minute before it expires (the SDK asks before every connection). */
const signIn = new TerminalToken(() => ParleyHttp.devToken(options.server, options.user), options.token ?? null);
const token = () => signIn.get();

const http = new ParleyHttp(options.server, token);
try {
  await token();
  await http.conversations({ limit: 1 }); // fails fast on a refused token
} catch (err) {
  const hint = options.token ? '' : ' (without --token the server must issue development tokens: see "Identity" in README.md)';
  fail(`cannot sign in as ${options.user} at ${options.server}: ${(err as Error).message}${hint}`);
}

const client = new ParleyClient({
  url: websocketUrl(options.server),
  token,
  storage: fileStorage(positionFile(options.dataDir, options.user)),
  WebSocket: WebSocket as unknown as WebSocketFactory,
});

// ---- the screen ------------------------------------------------------------

const rl = readline.createInterface({ input: process.stdin, output: out, terminal, prompt: '> ' });
let prompting = false;
const screen: Screen = {
  line(text) {
    if (!terminal) return void out.write(`${text}\n`);
    // Print above what the user is typing, then redraw their line.
    readline.clearLine(out, 0);
    readline.cursorTo(out, 0);
    out.write(`${text}\n`);
    if (prompting) rl.prompt(true);
  },
  setPrompt(prompt) {
    rl.setPrompt(prompt);
    if (terminal && prompting) rl.prompt(true);
  },
};

let quitting = false;
function quit(code = 0): void {
  if (quitting) return;
  quitting = true;
  prompting = false;
  session.stop();
  rl.close();
  out.write(terminal ? '\n' : '', () => process.exit(code));
}

const session = new TerminalSession({ client, http, renderer, screen, onQuit: () => quit(0) });

// ---- input -------------------------------------------------------------------

screen.line(renderer.info(`connecting to ${options.server} as ${options.user}…`));
const started = session.start(); // queued first: lines typed meanwhile are handled after it

rl.on('line', (line) => {
  void session.input(line).then(() => {
    if (terminal && prompting) rl.prompt(true);
  });
});
rl.on('close', () => void session.input('/quit')); // end of input (Ctrl-D, or a closed pipe)
rl.on('SIGINT', () => quit(0));
process.on('SIGINT', () => quit(0));
process.on('SIGTERM', () => quit(0));

// Typing signals: every keystroke of a message line (readline emits keypresses on terminals; on pipes we ask for them).
if (!terminal) readline.emitKeypressEvents(process.stdin);
let typed = '';
process.stdin.on('keypress', (str: string | undefined, key: { name?: string; ctrl?: boolean; meta?: boolean } | undefined) => {
  if (key?.name === 'return' || key?.name === 'enter') {
    typed = '';
    return;
  }
  if (!terminal) {
    if (key?.name === 'backspace') typed = typed.slice(0, -1);
    else if (str && !key?.ctrl && !key?.meta) typed += str;
  }
  session.keystroke(terminal ? rl.line : typed);
});

try {
  await started;
} catch (err) {
  fail(`cannot connect as ${options.user} to ${options.server}: ${(err as Error).message}`);
}
prompting = true;
if (terminal) rl.prompt();
