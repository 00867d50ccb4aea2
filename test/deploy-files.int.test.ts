import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { describe, expect, inject, it } from 'vitest';
import { parseStartArgs } from '../ops/start-args.js';
import { CONFIG_VARIABLES, loadConfig } from '../services/runtime/config.js';
import { decideExposure, exposureInput } from '../services/runtime/exposure.js';
import { ROLES, type Role } from '../services/runtime/roles.js';
import {
  expandSpecifiers,
  interpolateDeep,
  natsConfValues,
  natsRoutes,
  parseDockerfile,
  parseEnvFile,
  parseEnvironmentLine,
  parseUnitFile,
  splitCommand,
  unitValue,
  unitValues,
  type UnitFile,
} from './support/deploy-files.js';

/**
 * The reference deployment's files (ops/deploy/, docs/deployment.md) are
 * checked, not just shown: the systemd units and the compose file parse and
 * run entry points that exist with flags the CLI accepts, every variable they
 * set is one the configuration reads, the production settings load and pass
 * the exposure check, and nats-server itself accepts the cluster configs.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const deploy = path.join(root, 'ops', 'deploy');
const read = (rel: string) => fs.readFileSync(path.join(deploy, rel), 'utf8');
const known = new Set(CONFIG_VARIABLES);

/** Where the units expect the checkout (built, `npm ci --omit=dev`) and the shared settings. */
const INSTALL_DIR = '/opt/parley';
const ENV_FILE = '/etc/parley/parley.env';
/** Set per process by the units; in the shared env file they would override the units' values (EnvironmentFile= wins over Environment=). */
const PER_PROCESS = ['PORT', 'PARLEY_DATA_DIR', 'PARLEY_ROLES', 'NODE_ID'];
const PLACEHOLDER = '__SET_ME__';

/** The keys the units may use; a misspelt one (systemd would ignore it with a warning) fails here. */
const UNIT_KEYS: Record<string, string[]> = {
  Unit: ['Description', 'Documentation', 'After', 'Wants', 'Requires'],
  Service: [
    'Type',
    'User',
    'Group',
    'WorkingDirectory',
    'EnvironmentFile',
    'Environment',
    'ExecStart',
    'ExecReload',
    'KillSignal',
    'TimeoutStopSec',
    'Restart',
    'RestartSec',
    'LimitNOFILE',
    'StateDirectory',
    'NoNewPrivileges',
    'ProtectSystem',
    'ProtectHome',
    'ReadWritePaths',
    'PrivateTmp',
    'PrivateDevices',
    'ProtectKernelTunables',
    'ProtectKernelModules',
    'ProtectControlGroups',
    'RestrictAddressFamilies',
    'LockPersonality',
    'RestrictRealtime',
    'CapabilityBoundingSet',
  ],
  Install: ['WantedBy'],
};

/** Sample instances of each template: every NATS node config, two gateway ports. */
const natsNodes = fs
  .readdirSync(path.join(deploy, 'nats'))
  .filter((f) => f.endsWith('.conf'))
  .map((f) => f.slice(0, -'.conf'.length));
const units = fs.readdirSync(path.join(deploy, 'systemd')).filter((f) => f.endsWith('.service'));
function instancesOf(file: string): string[] {
  if (!file.includes('@')) return [''];
  if (file.startsWith('nats-server@')) return natsNodes;
  if (file.startsWith('parley-gateway@')) return ['8080', '8081'];
  throw new Error(`no sample instance for ${file}`);
}
const unitName = (file: string, instance: string) => (instance ? file.replace('@.', `@${instance}.`) : file);

/** The TypeScript source a file of the build (`dist/x/y.js`) is compiled from; undefined if the build has no such file. */
function sourceOfBuilt(distRelative: string): string | undefined {
  if (!distRelative.startsWith('dist/') || !distRelative.endsWith('.js')) return undefined;
  const source = distRelative.slice('dist/'.length, -'.js'.length) + '.ts';
  const tsconfig = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[]; exclude: string[] };
  const included = tsconfig.include.some((dir) => source.startsWith(`${dir}/`)) && !tsconfig.exclude.some((dir) => source.startsWith(`${dir}/`));
  return included && fs.existsSync(path.join(root, source)) ? source : undefined;
}

/** `node <built file> start --roles …` (or a role's own main): the roles it runs; throws if the file or the flags are wrong. */
function rolesOfCommand(argv: string[]): Role[] {
  const [bin, script, ...args] = argv;
  expect(path.basename(bin!), `the interpreter of ${argv.join(' ')}`).toBe('node');
  const rel = path.isAbsolute(script!) ? path.relative(INSTALL_DIR, script!) : script!;
  const source = sourceOfBuilt(rel);
  expect(source, `${script} is not a file of the build`).toBeDefined();
  expect(source, 'deployments run the operator CLI (`start`)').toBe('ops/cli/main.ts');
  expect(args[0]).toBe('start');
  const parsed = parseStartArgs(args.slice(1)); // throws on a flag the CLI refuses
  expect(parsed.roles, 'every deployed process says its roles').toBeDefined();
  return parsed.roles!;
}

/** Fills the placeholders with valid secrets: what an operator does before starting. */
function withSecrets(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = v.replaceAll(PLACEHOLDER, randomBytes(32).toString('hex'));
  return out;
}

function expectProductionConfig(env: Record<string, string>, what: string): void {
  for (const name of Object.keys(env)) expect(known.has(name), `${what}: ${name} is not a variable of services/runtime/config.ts`).toBe(true);
  const config = loadConfig(env, root);
  expect(config.nats.replicas, `${what}: STREAM_REPLICAS`).toBe(3);
  expect(config.nats.url?.split(',')).toHaveLength(3);
  expect(config.postgres.url, `${what}: DATABASE_URL`).toBeDefined();
  expect(config.clickhouse.url, `${what}: CLICKHOUSE_URL (each process would otherwise keep its own chDB)`).toBeDefined();
  expect(config.auth.devTokens, `${what}: dev tokens`).toBe(false);
  // Listening beyond loopback, and allowed to without PARLEY_ALLOW_INSECURE_BIND.
  expect(config.gateway.host).not.toMatch(/^127\.|^localhost$/);
  expect(config.gateway.allowInsecureBind).toBe(false);
  expect(decideExposure(exposureInput(config)), `${what}: exposure`).toEqual({ action: 'ok' });
}

const envFileEntries = parseEnvFile(read('parley.env'), 'parley.env');
const envFile = Object.fromEntries(envFileEntries);

describe('ops/deploy/parley.env', () => {
  it('sets each variable once, only variables the configuration reads, none that are per process', () => {
    const names = envFileEntries.map(([k]) => k);
    expect(new Set(names).size, 'a variable set twice').toBe(names.length);
    expect(
      names.filter((n) => !known.has(n)),
      'unknown to services/runtime/config.ts',
    ).toEqual([]);
    expect(
      names.filter((n) => PER_PROCESS.includes(n)),
      'per-process variables (the units set them)',
    ).toEqual([]);
  });

  it('refuses to start as shipped: the secrets are placeholders the configuration rejects', () => {
    expect(() => loadConfig(envFile, root)).toThrow(/AUTH_JWT_SECRET[\s\S]*ANALYTICS_ADMIN_TOKEN|ANALYTICS_ADMIN_TOKEN[\s\S]*AUTH_JWT_SECRET/);
  });
});

describe('ops/deploy/systemd', () => {
  const parsed = new Map<string, UnitFile>(units.map((f) => [f, parseUnitFile(fs.readFileSync(path.join(deploy, 'systemd', f), 'utf8'), f)]));

  it.each(units)('%s: known sections and keys, restart and hardening set', (file) => {
    const unit = parsed.get(file)!;
    expect([...unit.keys()].sort()).toEqual(['Install', 'Service', 'Unit']);
    for (const [section, entries] of unit) {
      for (const [key] of entries) expect(UNIT_KEYS[section], `[${section}] ${key}=`).toContain(key);
    }
    expect(unitValue(unit, 'Service', 'Restart')).toBe('on-failure');
    expect(unitValue(unit, 'Service', 'TimeoutStopSec')).toMatch(/^[0-9]+$/);
    expect(unitValue(unit, 'Service', 'KillSignal')).toMatch(/^SIG[A-Z0-9]+$/);
    expect(unitValue(unit, 'Service', 'User')).not.toBe('root');
    expect(unitValue(unit, 'Service', 'NoNewPrivileges')).toBe('true');
    expect(unitValue(unit, 'Service', 'ProtectSystem')).toBe('strict');
    expect(unitValue(unit, 'Service', 'PrivateTmp')).toBe('true');
    expect(unitValues(unit, 'Service', 'ReadWritePaths').length).toBeGreaterThan(0);
  });

  const parleyUnits = units.filter((f) => f.startsWith('parley-'));
  const instances = parleyUnits.flatMap((file) => instancesOf(file).map((instance) => ({ file, instance })));

  it.each(instances)(
    '$file ($instance): runs the built CLI with accepted flags, writes only where allowed, loads a production config',
    ({ file, instance }) => {
      const unit = parsed.get(file)!;
      const x = (v: string) => expandSpecifiers(v, instance);
      expect(unitValue(unit, 'Service', 'WorkingDirectory')).toBe(INSTALL_DIR);
      expect(unitValue(unit, 'Service', 'EnvironmentFile')).toBe(ENV_FILE);
      expect(unitValue(unit, 'Service', 'KillSignal'), 'Parley stops cleanly on SIGTERM').toBe('SIGTERM');
      // Parley exits within 10 s of SIGTERM (ops/run.ts): systemd must not SIGKILL it first.
      expect(Number(unitValue(unit, 'Service', 'TimeoutStopSec'))).toBeGreaterThan(10);
      rolesOfCommand(splitCommand(x(unitValue(unit, 'Service', 'ExecStart'))));

      const unitEnv = Object.fromEntries(unitValues(unit, 'Service', 'Environment').flatMap((line) => parseEnvironmentLine(x(line))));
      const env = withSecrets({ ...envFile, ...unitEnv });
      expectProductionConfig(env, unitName(file, instance));
      // ProtectSystem=strict makes everything else read-only: the data dir must be writable.
      const dataDir = env.PARLEY_DATA_DIR;
      expect(dataDir, 'each process has its own PARLEY_DATA_DIR').toBeDefined();
      const writable = unitValues(unit, 'Service', 'ReadWritePaths').flatMap((v) => splitCommand(x(v)));
      expect(
        writable.some((dir) => dataDir === dir || dataDir!.startsWith(`${dir}/`)),
        `${dataDir} under ReadWritePaths ${writable.join(' ')}`,
      ).toBe(true);
    },
  );

  it('every role runs somewhere; two gateway instances differ in port and data dir', () => {
    const roles = new Set(
      instances.flatMap(({ file, instance }) => rolesOfCommand(splitCommand(expandSpecifiers(unitValue(parsed.get(file)!, 'Service', 'ExecStart'), instance)))),
    );
    expect([...roles].sort()).toEqual([...ROLES].sort());
    const gateways = instances.filter((i) => i.file.startsWith('parley-gateway@'));
    const envOf = ({ file, instance }: { file: string; instance: string }) =>
      Object.fromEntries(unitValues(parsed.get(file)!, 'Service', 'Environment').flatMap((l) => parseEnvironmentLine(expandSpecifiers(l, instance))));
    expect(new Set(gateways.map((g) => envOf(g).PORT)).size).toBe(gateways.length);
    expect(new Set(gateways.map((g) => envOf(g).PARLEY_DATA_DIR)).size).toBe(gateways.length);
  });

  it.each(natsNodes)('nats-server@%s: runs nats-server on its node config, whose store is writable', (node) => {
    const unit = parsed.get('nats-server@.service')!;
    const [bin, ...args] = splitCommand(expandSpecifiers(unitValue(unit, 'Service', 'ExecStart'), node));
    expect(path.basename(bin!)).toBe('nats-server');
    expect(args).toEqual(['-c', `/etc/nats/${node}.conf`]);
    const storeDir = natsConfValues(read(`nats/${node}.conf`), 'store_dir')[0]!;
    const writable = unitValues(unit, 'Service', 'ReadWritePaths');
    expect(
      writable.some((dir) => storeDir.startsWith(`${dir}/`)),
      `${storeDir} under ${writable.join(' ')}`,
    ).toBe(true);
  });

  // systemd's own parser, where this machine has it: its warnings (an unknown key, a bad value) fail the test.
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  it.runIf(analyze.status === 0)('systemd-analyze verify finds nothing wrong but commands installed elsewhere', () => {
    const names = units.flatMap((f) => instancesOf(f).map((i) => path.join(deploy, 'systemd', unitName(f, i))));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...names], { encoding: 'utf8', timeout: 15_000 });
    const problems = `${r.stdout}\n${r.stderr}`
      .split('\n')
      .filter(Boolean)
      // nats-server and node live on the target hosts, not necessarily here.
      .filter((l) => !/Command \/usr\/(local\/)?bin\/(nats-server|node) is not executable/.test(l));
    // Its exit status is 1 for a command missing on this machine alone: what it printed is the verdict.
    expect(problems).toEqual([]);
    expect(r.error).toBeUndefined();
  });
});

describe('ops/deploy/nats', () => {
  const confs = natsNodes.map((node) => ({ node, text: read(`nats/${node}.conf`) }));

  it.each(natsNodes)('nats-server -t accepts %s.conf', (node) => {
    const r = spawnSync(inject('natsBinary'), ['-c', path.join(deploy, 'nats', `${node}.conf`), '-t'], { encoding: 'utf8', timeout: 10_000 });
    expect(`${r.stdout}${r.stderr}`).toContain('is valid');
    expect(r.status).toBe(0);
  });

  it('three nodes of one cluster: distinct names, the same routes to all of them, a file store synced every second', () => {
    expect(confs).toHaveLength(3);
    expect(new Set(confs.map((c) => natsConfValues(c.text, 'server_name')[0])).size).toBe(3);
    expect(new Set(confs.map((c) => natsConfValues(c.text, 'name')[0]))).toEqual(new Set(['parley']));
    const routes = confs.map((c) => natsRoutes(c.text).join(' '));
    expect(new Set(routes).size, 'every node lists the same routes').toBe(1);
    expect(natsRoutes(confs[0]!.text)).toHaveLength(3);
    for (const c of confs) expect(natsConfValues(c.text, 'sync_interval')).toEqual(['1s']);
    // Parley's NATS_URL names the same hosts on the client port.
    const routeHosts = natsRoutes(confs[0]!.text)
      .map((r) => new URL(r).hostname)
      .sort();
    const clientHosts = envFile
      .NATS_URL!.split(',')
      .map((u) => new URL(u).hostname)
      .sort();
    expect(clientHosts).toEqual(routeHosts);
  });
});

describe('ops/deploy/compose.yaml and Dockerfile', () => {
  const raw = parseYaml(read('compose.yaml'), { merge: true }) as Record<string, unknown>;
  const secrets = {
    POSTGRES_PASSWORD: 'pg-secret',
    CLICKHOUSE_PASSWORD: 'ch-secret',
    AUTH_JWT_SECRET: randomBytes(32).toString('hex'),
    ANALYTICS_ADMIN_TOKEN: randomBytes(24).toString('hex'),
  };
  type Service = {
    image?: string;
    build?: { context: string; dockerfile: string };
    command?: string[];
    environment?: Record<string, string>;
    healthcheck?: { test: string[] };
    depends_on?: Record<string, { condition: string }>;
    volumes?: string[];
    hostname?: string;
  };
  const compose = interpolateDeep(raw, secrets) as { services: Record<string, Service> };
  const services = compose.services;

  it('refuses to run without the secrets', () => {
    for (const name of Object.keys(secrets)) {
      const missing: Record<string, string | undefined> = { ...secrets, [name]: undefined };
      expect(() => interpolateDeep(raw, missing), name).toThrow(new RegExp(`required variable ${name}`));
    }
  });

  it('the image: node 20 slim, built with npm run build, entry point the built CLI', () => {
    const built = Object.values(services).filter((s) => s.build);
    expect(built.length).toBeGreaterThan(0);
    for (const s of built) {
      const contextDir = path.resolve(deploy, s.build!.context);
      expect(contextDir).toBe(root);
      expect(fs.existsSync(path.join(contextDir, s.build!.dockerfile))).toBe(true);
    }
    const dockerfile = parseDockerfile(read('Dockerfile'));
    expect(dockerfile.filter(([i]) => i === 'FROM').map(([, a]) => a.split(/\s+/)[0])).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    const scripts = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const [, args] of dockerfile.filter(([i]) => i === 'RUN')) {
      for (const m of args.matchAll(/npm run (\S+)/g)) expect(scripts[m[1]!], `npm run ${m[1]}`).toBeDefined();
    }
    expect(dockerfile.some(([i, a]) => i === 'RUN' && /npm run build/.test(a))).toBe(true);
    const entrypoint = JSON.parse(dockerfile.find(([i]) => i === 'ENTRYPOINT')![1]) as string[];
    const cmd = JSON.parse(dockerfile.find(([i]) => i === 'CMD')![1]) as string[];
    expect(dockerfile.find(([i]) => i === 'WORKDIR')![1]).toBe(INSTALL_DIR);
    rolesOfCommand([...entrypoint, ...cmd]);
    // The build context is the repository: the Dockerfile's own ignore file keeps node_modules and data out of it.
    expect(read('Dockerfile.dockerignore').split('\n')).toEqual(expect.arrayContaining(['node_modules', 'dist', '.parley']));
  });

  it('Parley services run accepted commands with a production config; every role runs; each waits for healthy dependencies', () => {
    const entrypoint = JSON.parse(parseDockerfile(read('Dockerfile')).find(([i]) => i === 'ENTRYPOINT')![1]) as string[];
    const roles = new Set<Role>();
    const parley = Object.entries(services).filter(([, s]) => s.build);
    for (const [name, s] of parley) {
      for (const r of rolesOfCommand([...entrypoint, ...s.command!])) roles.add(r);
      expectProductionConfig(s.environment!, name);
      // Every dependency named in the environment is a service of this file.
      const env = s.environment!;
      const hosts = [...env.NATS_URL!.split(','), env.DATABASE_URL!, env.CLICKHOUSE_URL!].map((u) => new URL(u).hostname);
      for (const h of hosts) expect(Object.keys(services), `${name} reaches ${h}`).toContain(h);
      for (const h of new Set(hosts)) expect(s.depends_on?.[h]?.condition, `${name} waits for ${h}`).toBe('service_healthy');
      // The health check asks the port the process listens on.
      expect(s.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${env.PORT}/healthz`);
    }
    expect([...roles].sort()).toEqual([...ROLES].sort());
    expect(parley.filter(([, s]) => s.command!.includes('gateway')).length, 'gateways').toBeGreaterThanOrEqual(2);
  });

  it('dependencies: pinned images, health checks, the node configs mounted', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image && !s.build) expect(s.image, name).toMatch(/:[0-9][^:]*$/);
      expect(s.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(0);
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        if (condition === 'service_healthy') expect(services[dep]!.healthcheck).toBeDefined();
      }
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0]!;
        if (host.startsWith('.')) expect(fs.existsSync(path.resolve(deploy, host)), `${name} mounts ${host}`).toBe(true);
      }
    }
    const natsServices = Object.entries(services).filter(([, s]) => s.image?.startsWith('nats:'));
    expect(natsServices.map(([n]) => n).sort()).toEqual(
      natsRoutes(read('nats/n1.conf'))
        .map((r) => new URL(r).hostname)
        .sort(),
    );
    for (const [, s] of natsServices) {
      const mountedConf = s.volumes!.find((v) => v.endsWith(':/etc/nats/nats-server.conf:ro'))!;
      expect(s.command).toContain('/etc/nats/nats-server.conf');
      const conf = fs.readFileSync(path.resolve(deploy, mountedConf.split(':')[0]!), 'utf8');
      const storeDir = natsConfValues(conf, 'store_dir')[0]!;
      expect(
        s.volumes!.some((v) => storeDir.startsWith(`${v.split(':')[1]}/`)),
        `${storeDir} on a volume`,
      ).toBe(true);
    }
  });
});
