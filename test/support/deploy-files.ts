/**
 * Readers for the deployment files of ops/deploy/ (test/deploy-files.int.test.ts):
 * systemd unit files, an environment file, compose's variable interpolation
 * and the few directives of a Dockerfile the test checks. Each follows the
 * format's own rules as far as those files use it, and throws on what it
 * does not understand rather than guessing.
 */

export type UnitFile = Map<string, Array<[key: string, value: string]>>;

/** systemd.syntax(7): `[Section]` headers, `Key=Value`, `#`/`;` comments, a trailing backslash continues the line. */
export function parseUnitFile(text: string, name: string): UnitFile {
  const sections: UnitFile = new Map();
  let current: Array<[string, string]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      if (sections.has(header[1]!)) throw new Error(`${name}:${i + 1}: section [${header[1]}] twice`);
      current = [];
      sections.set(header[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new Error(`${name}:${i + 1}: not a Key=Value line: ${line}`);
    if (!current) throw new Error(`${name}:${i + 1}: ${kv[1]} before any section`);
    current.push([kv[1]!, kv[2]!]);
  }
  return sections;
}

/** Every value of `key` in `section` (systemd keys such as Environment= may repeat). */
export function unitValues(unit: UnitFile, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The one value of a key that must appear exactly once. */
export function unitValue(unit: UnitFile, section: string, key: string): string {
  const values = unitValues(unit, section, key);
  if (values.length !== 1) throw new Error(`[${section}] ${key}= appears ${values.length} times, expected once`);
  return values[0]!;
}

/** The instance specifiers the files use (%i, %I), and %% for a literal percent sign. */
export function expandSpecifiers(value: string, instance: string): string {
  return value.replace(/%(.)/g, (_, c: string) => {
    if (c === 'i' || c === 'I') return instance;
    if (c === '%') return '%';
    throw new Error(`specifier %${c} is not expected in ${value}`);
  });
}

/** A command line as systemd splits it: whitespace-separated words, double or single quotes grouping. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(command); m; m = re.exec(command)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/** `Environment=A=1 "B=two words"`: the assignments of one Environment= line. */
export function parseEnvironmentLine(value: string): Array<[string, string]> {
  return splitCommand(value).map((word) => {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new Error(`Environment= word without a name: ${word}`);
    return [word.slice(0, eq), word.slice(eq + 1)];
  });
}

/** An EnvironmentFile= (and dotenv) file: `KEY=value` lines, `#` comments, optional quotes around the value. */
export function parseEnvFile(text: string, name: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`${name}:${i + 1}: not a KEY=value line: ${line}`);
    const value = m[2]!;
    const quoted = /^"(.*)"$|^'(.*)'$/.exec(value);
    out.push([m[1]!, quoted ? (quoted[1] ?? quoted[2]!) : value]);
  });
  return out;
}

/**
 * Compose's interpolation of one string: `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$VAR` and `$$` (a
 * literal `$`). A required variable that is missing throws its message.
 */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name?: string, op?: string, arg?: string, bare?: string) => {
      if (whole === '$$') return '$';
      if (bare) return env[bare] ?? '';
      const v = env[name!];
      const missing = op?.startsWith(':') ? !v : v === undefined;
      if (op?.endsWith('-')) return missing ? arg! : v!;
      if (op?.endsWith('?')) {
        if (missing) throw new Error(`required variable ${name} is missing: ${arg}`);
        return v!;
      }
      return v ?? '';
    },
  );
}

/** Interpolates every string of a parsed compose document (compose interpolates values, not keys). */
export function interpolateDeep(node: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof node === 'string') return interpolate(node, env);
  if (Array.isArray(node)) return node.map((n) => interpolateDeep(n, env));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateDeep(v, env)]));
  return node;
}

/** The instructions of a Dockerfile, continuation lines joined: [instruction in upper case, arguments]. */
export function parseDockerfile(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${i + 1}: ${line}`);
    out.push([m[1]!.toUpperCase(), m[2]!]);
  }
  return out;
}

/** nats-server config: the values of `key: value` / `key = value` lines (enough for names, paths and routes). */
export function natsConfValues(text: string, key: string): string[] {
  const re = new RegExp(`^\\s*${key}\\s*[:=]\\s*("?)([^"\\n#]+)\\1\\s*$`, 'gm');
  return [...text.matchAll(re)].map((m) => m[2]!.trim());
}

/** The routes of a nats-server config's cluster block. */
export function natsRoutes(text: string): string[] {
  const block = /routes\s*[:=]?\s*\[([^\]]*)\]/.exec(text.replace(/#.*$/gm, ''));
  if (!block) return [];
  return block[1]!.split(/[\s,]+/).filter(Boolean);
}
