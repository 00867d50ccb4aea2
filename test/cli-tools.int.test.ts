import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { printJson, type CliIO } from '../ops/cli/command.js';
import { main } from '../ops/cli/main.js';

/** The CLI's own surface: shell completion, --json and exit statuses (no platform needed). */
function io(out: string[], err: string[] = []): CliIO {
  return { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, signal: new AbortController().signal };
}

async function script(shell: string): Promise<string> {
  const out: string[] = [];
  expect(await main(['completion', shell], io(out))).toBe(0);
  return out.join('\n');
}

/** What bash offers after `line` (the last word is the one being completed). */
function bashComplete(text: string, line: string): string[] {
  const words = line.split(' ');
  const program = `${text}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _parley; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', program], { encoding: 'utf8', timeout: 5000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('parley completion', () => {
  it("completes groups, commands and each command's options in bash, from the command table", async () => {
    const bash = await script('bash');
    expect(bashComplete(bash, 'parley ')).toEqual(['streams', 'projectors', 'parked', 'log', 'analytics', 'start', 'completion', 'help']);
    expect(bashComplete(bash, 'parley pro')).toEqual(['projectors']);
    expect(bashComplete(bash, 'parley projectors re')).toEqual(['rebuild', 'reset']);
    expect(bashComplete(bash, 'parley projectors reset --')).toEqual(['--to-seq', '--shard', '--json', '--help']);
    expect(bashComplete(bash, 'parley parked list --st')).toEqual(['--status']);
    expect(bashComplete(bash, 'parley start --r')).toEqual(['--roles']);
    expect(bashComplete(bash, 'parley completion ')).toEqual(['bash', 'zsh']);
  });

  it('prints a zsh script that registers the same function', async () => {
    const zsh = await script('zsh');
    expect(zsh.startsWith('#compdef parley\n')).toBe(true);
    expect(zsh).toContain('compdef _parley parley');
    // The word table is shared with bash: sh syntax, so bash can at least parse it.
    expect(spawnSync('bash', ['-n', '-c', zsh.replace(/^_parley\(\) \{[\s\S]*$/m, '')]).status).toBe(0);
  });

  it('answers an unknown shell with the usage and status 2', async () => {
    const err: string[] = [];
    expect(await main(['completion', 'fish'], io([], err))).toBe(2);
    expect(err.join('\n')).toContain('usage: parley completion <bash|zsh>');
  });
});

describe('--json and exit statuses', () => {
  it('prints every document on one line with --json, indented otherwise', () => {
    const pretty: string[] = [];
    const compact: string[] = [];
    printJson(io(pretty), { a: 1, b: [2] });
    printJson({ ...io(compact), json: true }, { a: 1, b: [2] });
    expect(pretty).toEqual(['{\n  "a": 1,\n  "b": [\n    2\n  ]\n}']);
    expect(compact).toEqual(['{"a":1,"b":[2]}']);
  });

  it('takes --json anywhere and documents the exit statuses in --help', async () => {
    const err: string[] = [];
    expect(await main(['--json', 'help'], io([], err))).toBe(0);
    expect(err.join('\n')).toContain('Exit status: 0 ok, 1 the command failed (error on stderr), 2 usage mistake.');
    expect(await main(['streams', 'tail', '--json'], io([]))).toBe(2);
  });
});
