import type { CommandGroup } from './command.js';

/**
 * `parley completion bash|zsh`: a completion script generated from the
 * command table, so a new command or option completes without editing it.
 * Options are read off each command's usage line (`--to-seq N` → `--to-seq`).
 */
export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

/** Besides the groups: commands main.ts handles itself. */
const TOP_LEVEL = ['start', 'completion', 'help'];
const GLOBAL_OPTIONS = ['--json', '--help'];

function optionsOf(usage: string): string[] {
  return [...new Set([...usage.matchAll(/--[a-z][a-z0-9-]*/g)].map((m) => m[0]))];
}

/** group → command → its options, plus the top-level words. */
function table(groups: Record<string, CommandGroup>, startUsage: string) {
  const words = [...Object.keys(groups), ...TOP_LEVEL];
  const commands = Object.entries(groups).map(([name, g]) => ({ name, commands: Object.keys(g.commands) }));
  const options = Object.entries(groups).flatMap(([name, g]) =>
    Object.entries(g.commands).map(([cmd, c]) => ({ key: `${name} ${cmd}`, options: [...optionsOf(c.usage), ...GLOBAL_OPTIONS] })),
  );
  return { words, commands, options, start: [...optionsOf(startUsage), '--help'] };
}

/** Shell words are our own command and option names ([a-z0-9-]): nothing to quote. */
export function completionScript(shell: Shell, groups: Record<string, CommandGroup>, startUsage: string): string {
  const t = table(groups, startUsage);
  const groupCases = t.commands.map((g) => `    ${g.name}) words="${g.commands.join(' ')}" ;;`).join('\n');
  const optionCases = t.options.map((o) => `    "${o.key}") words="${o.options.join(' ')}" ;;`).join('\n');
  const body = `_parley_words() {
  # $1: the group (or top-level command), $2: the command within it, $3: how many words precede the one completed
  local words=""
  if [ "$3" -le 1 ]; then
    words="${t.words.join(' ')}"
  elif [ "$1" = completion ]; then
    words="${SHELLS.join(' ')}"
  elif [ "$1" = start ]; then
    words="${t.start.join(' ')}"
  elif [ "$3" -eq 2 ]; then
    case "$1" in
${groupCases}
    esac
  else
    case "$1 $2" in
${optionCases}
    esac
  fi
  printf '%s' "$words"
}`;
  if (shell === 'bash') {
    return `# parley bash completion: eval "$(parley completion bash)" (or save it under /etc/bash_completion.d/parley)
${body}
_parley() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  COMPREPLY=( $(compgen -W "$(_parley_words "\${COMP_WORDS[1]}" "\${COMP_WORDS[2]}" "$COMP_CWORD")" -- "$cur") )
}
complete -F _parley parley
`;
  }
  return `#compdef parley
# parley zsh completion: eval "$(parley completion zsh)" (or save it as _parley on your $fpath)
${body}
_parley() {
  local -a candidates
  candidates=(\${=\$(_parley_words "\${words[2]}" "\${words[3]}" "$((CURRENT - 1))")})
  compadd -- \$candidates
}
if [ "$funcstack[1]" = "_parley" ]; then _parley "$@"; else compdef _parley parley; fi
`;
}
