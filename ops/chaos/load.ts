import { setTimeout as sleep } from 'node:timers/promises';
import { Device } from './device.js';
import type { Ledger } from './ledger.js';

/**
 * The bounded load: `users` users with one device on each gateway, in
 * `groups` group conversations (each user in most of them), sending at
 * `ratePerSecond` in total until `maxSends` have been issued or `stop()` is
 * called; meanwhile devices drop their connection now and then and resume
 * from their stored position. Every send waits for its ack (retrying with
 * the same clientMsgId), so a send is issued once and counted once.
 */
export interface LoadOptions {
  gateways: { name: string; port: number }[];
  users: number;
  groups: number;
  ratePerSecond: number;
  maxSends: number;
  /** Mean time between two device bounces (all devices together). */
  bounceEveryMs: number;
  ledger: Ledger;
  /** The log's stream shards (STREAM_SHARDS > 1): the groups are spread over as many of them as they can cover. */
  shards?: { count: number; of: (conversationId: string) => number };
  note?: (msg: string, fields: Record<string, unknown>) => void;
}

export interface Load {
  devices: Device[];
  conversations: { id: string; members: string[] }[];
  tokens: Map<string, string>;
  issued(): number;
  /** Stops issuing sends and waits (up to `timeoutMs`) for those in flight to be acked. */
  drain(timeoutMs: number): Promise<{ unacked: number }>;
  close(): Promise<void>;
}

export async function startLoad(o: LoadOptions): Promise<Load> {
  const http = `http://127.0.0.1:${o.gateways[0]!.port}`;
  const users = Array.from({ length: o.users }, (_, i) => `chaos_u${i}`);
  const tokens = new Map<string, string>();
  for (const u of users) {
    const r = await postJson(`${http}/v1/dev/token`, { userId: u, ttlSeconds: 86_400 });
    tokens.set(u, r.token as string);
  }
  // Group k leaves out every user i with i % groups == k: overlapping, but no two groups alike.
  const conversations: { id: string; members: string[] }[] = [];
  const covered = new Set<number>();
  const wanted = Math.min(o.shards?.count ?? 1, o.groups);
  for (let k = 0; k < o.groups; k++) {
    const members = users.filter((_, i) => i % o.groups !== k || o.groups === 1);
    const owner = members[0]!;
    // Ids are minted by the server: with several shards, a group landing on a shard already covered is created
    // again (a few times at most) while another shard has none, so the load crosses every shard it can. The
    // extra groups stay, without messages.
    for (let attempt = 0; ; attempt++) {
      const r = await postJson(`${http}/v1/conversations`, { kind: 'group', title: `chaos ${k}`, members: members.slice(1) }, tokens.get(owner));
      const id = r.conversationId as string;
      const shard = o.shards?.of(id) ?? 0;
      if (covered.has(shard) && covered.size < wanted && attempt < 10) continue;
      covered.add(shard);
      conversations.push({ id, members });
      break;
    }
  }
  const devices: Device[] = [];
  for (const u of users) {
    const mine = conversations.filter((c) => c.members.includes(u)).map((c) => c.id);
    for (const g of o.gateways) {
      const name = `${u}@${g.name}`;
      o.ledger.addDevice(name, u, mine);
      devices.push(new Device(name, u, g.name, `ws://127.0.0.1:${g.port}/v1/ws`, tokens.get(u)!, o.ledger, o.note));
    }
  }
  await Promise.all(devices.map((d) => d.ensureConnected()));

  let issued = 0;
  let stopping = false;
  const interval = 1000 / o.ratePerSecond;
  let nextSlot = Date.now();
  /** One slot per interval, shared by all senders: the total rate is bounded whatever each one waits for. */
  const takeSlot = async (): Promise<boolean> => {
    if (stopping || issued >= o.maxSends) return false;
    const at = Math.max(nextSlot, Date.now());
    nextSlot = at + interval;
    await sleep(at - Date.now());
    if (stopping || issued >= o.maxSends) return false;
    issued++;
    return true;
  };
  const senders = devices.map(async (d, di) => {
    const mine = conversations.filter((c) => c.members.includes(d.user));
    for (let n = 0; await takeSlot(); n++) {
      const conv = mine[(n + di) % mine.length]!;
      await d.send(conv.id, `${d.user}.${d.gateway}.${n}`, `chaos ${d.name} #${n}`);
    }
  });
  const bouncer = (async () => {
    while (!stopping) {
      await sleep(o.bounceEveryMs * (0.5 + Math.random()));
      if (!stopping) devices[Math.floor(Math.random() * devices.length)]!.bounce();
    }
  })();

  return {
    devices,
    conversations,
    tokens,
    issued: () => issued,
    async drain(timeoutMs) {
      stopping = true;
      await bouncer;
      let left = 0;
      const all = Promise.all(senders);
      const timedOut = await Promise.race([all.then(() => false), sleep(timeoutMs).then(() => true)]);
      if (timedOut) left = issued - o.ledger.acks.size;
      return { unacked: left };
    },
    async close() {
      stopping = true;
      await Promise.all(devices.map((d) => d.close()));
    },
  };
}

async function postJson(url: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    }).catch(() => null);
    if (res && res.status < 300) return (await res.json()) as Record<string, unknown>;
    if (attempt >= 10) throw new Error(`POST ${url} failed: ${res ? `${res.status} ${await res.text()}` : 'no answer'}`);
    await sleep(500);
  }
}
