import fs from 'node:fs/promises';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { toAppError } from '../runtime/errors.js';
import { DegradedError, lowDiskSpace, runHealthChecks, withStorageCheck } from './health.js';
import { jetStreamStorageRefusal, observePostgresQuery, StorageAlarms, storageAlarms, storageFailureOf } from './storage-full.js';

/** A pg DatabaseError as node-postgres builds it (code = SQLSTATE, severity set). */
function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}
function jsApiError(code: number, message: string): Error {
  return Object.assign(new Error(message), { name: 'JetStreamApiError', code });
}

describe('storage refusals are recognised by store, whatever reports them', () => {
  const cases: [string, unknown, { store: string | null; reason: RegExp } | null][] = [
    [
      'pg disk_full',
      pgError('53100', 'could not extend file "base/16384/16402": No space left on device'),
      { store: 'postgres', reason: /disk full \(SQLSTATE 53100\)/ },
    ],
    ['pg out_of_memory', pgError('53200', 'out of memory'), { store: 'postgres', reason: /out of memory \(SQLSTATE 53200\)/ }],
    ['pg too_many_connections', pgError('53300', 'sorry, too many clients already'), { store: 'postgres', reason: /too many connections/ }],
    ['pg configuration_limit_exceeded', pgError('53400', 'limit'), { store: 'postgres', reason: /configuration limit/ }],
    ['pg unique violation is not storage', pgError('23505', 'duplicate key'), null],
    ['a non-pg error with a class-53 looking code and no severity', Object.assign(new Error('x'), { code: '53100' }), null],
    [
      'JetStream insufficient resources',
      jsApiError(10023, 'insufficient resources'),
      { store: 'nats', reason: /storage full: insufficient resources \(10023\)/ },
    ],
    ['JetStream insufficient storage', jsApiError(10047, 'insufficient storage resources available'), { store: 'nats', reason: /10047/ }],
    ['JetStream account limits', jsApiError(10002, 'resource limits exceeded for account'), { store: 'nats', reason: /10002/ }],
    [
      'JetStream store write ENOSPC',
      jsApiError(10077, 'write /data/jetstream/$G/streams/x/msgs/1.blk: no space left on device'),
      { store: 'nats', reason: /^JetStream storage full: no space left on device \(10077\)$/ },
    ],
    ['JetStream store failure that is not space', jsApiError(10077, 'write /data/x: input/output error'), null],
    ['JetStream wrong last sequence', jsApiError(10071, 'wrong last sequence: 4'), null],
    [
      'fs ENOSPC, store unknown',
      Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
      { store: null, reason: /^no space left on a disk \(ENOSPC\)$/ },
    ],
    ['fs EDQUOT', Object.assign(new Error('quota'), { code: 'EDQUOT' }), { store: null, reason: /EDQUOT/ }],
    [
      'ClickHouse NOT_ENOUGH_SPACE',
      new Error('Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)'),
      { store: 'clickhouse', reason: /ClickHouse storage full/ },
    ],
    ['wrapped in a cause', new Error('batch failed', { cause: pgError('53100', 'disk full') }), { store: 'postgres', reason: /53100/ }],
    ['a plain error', new Error('boom'), null],
    ['a string', 'no space left', null],
    ['null', null, null],
  ];
  it.each(cases)('%s', (_name, err, expected) => {
    const got = storageFailureOf(err);
    if (expected === null) expect(got).toBeNull();
    else {
      expect(got?.store).toBe(expected.store);
      expect(got?.reason).toMatch(expected.reason);
      // Reasons reach clients and /healthz: never the server's file paths.
      expect(got?.reason).not.toMatch(/\/data\/|base\/16384/);
    }
  });

  it('attributes a bare ENOSPC to the store the caller names', () => {
    expect(storageFailureOf(Object.assign(new Error('x'), { code: 'ENOSPC' }), 'clickhouse')).toEqual({
      store: 'clickhouse',
      reason: 'no space left on the disk of the clickhouse store (ENOSPC)',
    });
  });

  it('classifies JetStream publish refusals from their code and description', () => {
    expect(jetStreamStorageRefusal(10023, 'insufficient resources')).toMatch(/storage full/);
    expect(jetStreamStorageRefusal(10077, 'write /x/1.blk: no space left on device')).toBe('JetStream storage full: no space left on device (10077)');
    expect(jetStreamStorageRefusal(10077, 'write /x/1.blk: input/output error')).toBe('JetStream could not store the event: input/output error (10077)');
    expect(jetStreamStorageRefusal(10071, 'wrong last sequence: 3')).toBeNull();
    expect(jetStreamStorageRefusal(10060, 'expected stream does not match')).toBeNull();
  });
});

describe('toAppError', () => {
  it('answers a full store as unavailable (retryable) with the reason, anything else as internal', () => {
    const full = toAppError(pgError('53100', 'could not extend file'));
    expect(full.toBody()).toEqual({ code: 'unavailable', message: 'Postgres disk full (SQLSTATE 53100); retry later', retryable: true });
    expect(full.status).toBe(503);
    expect(toAppError(new Error('boom')).code).toBe('internal');
    storageAlarms.clear('postgres');
  });
});

describe('StorageAlarms', () => {
  it('reports a refusal within the window, forgets it after, and a success clears it at once', () => {
    let now = 1_000;
    const alarms = new StorageAlarms(30_000, () => now);
    expect(alarms.active('nats')).toBeNull();
    alarms.report({ store: 'nats', reason: 'JetStream storage full: insufficient resources (10023)' });
    now += 29_000;
    expect(alarms.active('nats')).toMatch(/10023/);
    expect(alarms.active('postgres')).toBeNull();
    now += 2_000;
    expect(alarms.active('nats')).toBeNull();
    alarms.report({ store: 'nats', reason: 'again' });
    alarms.clear('nats');
    expect(alarms.active('nats')).toBeNull();
  });
});

describe('the Postgres query observer', () => {
  const full = pgError('53100', 'could not extend file: No space left on device');
  const cases: [string, string, boolean][] = [
    ['a plain insert', 'insert into "messages" ("id") values ($1)', true],
    ['a prepared (marked) insert', '/* prepared */ INSERT INTO messages (id) SELECT * FROM unnest($1::text[])', true],
    ['an insert inside a WITH', 'WITH m AS (INSERT INTO messages (id) VALUES ($1) RETURNING id) UPDATE conversations SET n = n + 1', true],
    ['a select', 'select "id" from "messages" where "id" = $1', false],
    ['an update', 'update "checkpoints" set "seq" = $1', false],
  ];
  it.each(cases)('%s %s the full-disk alarm when it succeeds', (_name, sqlText, clears) => {
    storageAlarms.clear('postgres');
    observePostgresQuery({ level: 'error', error: full, query: { sql: 'insert into x values (1)' } });
    expect(storageAlarms.active('postgres')).toMatch(/disk full/i);
    observePostgresQuery({ level: 'query', query: { sql: sqlText } });
    expect(storageAlarms.active('postgres') === null).toBe(clears);
    storageAlarms.clear('postgres');
  });
});

describe('/healthz with storage checks', () => {
  it('is degraded (naming the store and why) when only storage fails, down when anything is unreachable', async () => {
    const alarms = new StorageAlarms();
    const checks = {
      nats: withStorageCheck(async () => 'stream at seq 3', { store: 'nats', minFreeBytes: 0, alarms }),
      postgres: withStorageCheck(async () => undefined, { store: 'postgres', minFreeBytes: 0, alarms }),
    };
    expect(await runHealthChecks(checks)).toMatchObject({ status: 'ok', down: [], checks: { nats: { ok: true, detail: 'stream at seq 3' } } });

    alarms.report({ store: 'postgres', reason: 'Postgres disk full (SQLSTATE 53100)' });
    const degraded = await runHealthChecks(checks);
    expect(degraded).toMatchObject({
      status: 'degraded',
      down: ['postgres'],
      checks: { postgres: { ok: false, detail: 'Postgres disk full (SQLSTATE 53100)' }, nats: { ok: true } },
    });

    const down = await runHealthChecks({ ...checks, clickhouse: async () => Promise.reject(new Error('connection refused')) });
    expect(down.status).toBe('down');
    expect(down.down).toEqual(['postgres', 'clickhouse']);

    // A store that cannot be reached is down, not degraded, even with a refusal on record.
    const unreachable = await runHealthChecks({
      postgres: withStorageCheck(async () => Promise.reject(new Error('ECONNREFUSED')), { store: 'postgres', minFreeBytes: 0, alarms }),
    });
    expect(unreachable).toMatchObject({ status: 'down', checks: { postgres: { ok: false, detail: 'ECONNREFUSED' } } });

    expect((await runHealthChecks({ nats: async () => Promise.reject(new DegradedError('JetStream storage full')) })).status).toBe('degraded');
  });

  it('reads the free space of the disk holding a data directory, even one not created yet', async () => {
    const st = await fs.statfs(os.tmpdir());
    const free = st.bavail * st.bsize;
    expect(await lowDiskSpace(`${os.tmpdir()}/parley-not-created-yet/nats`, 1)).toBeNull();
    expect(await lowDiskSpace(os.tmpdir(), free + 1024 ** 4)).toMatch(
      /^disk full: [0-9.]+ MiB free on the disk of [^/]+\/ \(minimum [0-9]+ MiB, HEALTH_MIN_FREE_DISK_MB\)$/,
    );
  });
});
