/**
 * The Jepsen-style record of a chaos run: what the clients were told (every
 * ack), what every device saw (every event, live or replayed, in arrival
 * order), and what the system holds at the end (history over HTTP, and the
 * JetStream stream itself). `verdict` compares them.
 *
 * - lost: an acked message missing from the final history, from the stream,
 *   or from a device that should have it after its final resume (`complete`);
 * - duplicated: a client message id stored twice (history or stream, or acked
 *   as two different messages), or a device receiving the same sequence twice;
 * - misordered: a device seeing a conversation's events out of sequence order.
 *
 * Sequences are per shard stream (STREAM_SHARDS > 1): two conversations on
 * different shards can hold the same number. So a sequence is only ever taken
 * with its conversation (which lives on one shard): an ack's seq against the
 * stored copies of the same message, a device's events per conversation.
 */
export interface Ack {
  conversationId: string;
  clientMsgId: string;
  sender: string;
  messageId: string;
  seq: number;
  at: number;
  gateway: string;
}

export interface StoredMessage {
  conversationId: string;
  clientMsgId: string;
  sender: string;
  messageId: string;
  seq: number;
}

interface DeviceRecord {
  user: string;
  conversations: Set<string>;
  /** `<conversationId>@<seq>` of every conversation event seen. */
  seen: Set<string>;
  lastSeq: Map<string, number>;
  replayed: number;
  live: number;
  finalStatus: string | null;
}

export interface Verdict {
  acked: number;
  lost: number;
  duplicated: number;
  misordered: number;
  /** Examples, for the report. */
  details: string[];
  devicesChecked: number;
  devicesNotComplete: string[];
}

const key = (conversationId: string, sender: string, clientMsgId: string) => `${conversationId}/${sender}/${clientMsgId}`;

export class Ledger {
  readonly acks = new Map<string, Ack>();
  /** Every ack frame's time, per gateway (the unavailability windows). */
  readonly ackTimes = new Map<string, number[]>();
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly ackMismatch: string[] = [];
  private readonly deviceDuplicates: string[] = [];
  private readonly deviceMisorders: string[] = [];

  addDevice(device: string, user: string, conversations: string[]): void {
    this.devices.set(device, { user, conversations: new Set(conversations), seen: new Set(), lastSeq: new Map(), replayed: 0, live: 0, finalStatus: null });
  }

  ack(a: Ack): void {
    const k = key(a.conversationId, a.sender, a.clientMsgId);
    const times = this.ackTimes.get(a.gateway) ?? [];
    times.push(a.at);
    this.ackTimes.set(a.gateway, times);
    const first = this.acks.get(k);
    if (!first) return void this.acks.set(k, a);
    // A retry's ack must name the original message: anything else is a second stored copy.
    if (first.messageId !== a.messageId || first.seq !== a.seq)
      this.ackMismatch.push(`${k}: acked as ${first.messageId}@${first.seq} and ${a.messageId}@${a.seq}`);
  }

  /** One conversation event frame arriving at a device. */
  delivery(device: string, conversationId: string, seq: number, replayed: boolean): void {
    const d = this.devices.get(device)!;
    if (replayed) d.replayed++;
    else d.live++;
    const at = `${conversationId}@${seq}`;
    if (d.seen.has(at)) {
      this.deviceDuplicates.push(`${device} got seq ${seq} of ${conversationId} twice (${replayed ? 'replayed' : 'live'})`);
      return;
    }
    d.seen.add(at);
    const last = d.lastSeq.get(conversationId) ?? 0;
    if (seq < last) this.deviceMisorders.push(`${device} got seq ${seq} of ${conversationId} after ${last} (${replayed ? 'replayed' : 'live'})`);
    else d.lastSeq.set(conversationId, seq);
  }

  finalResume(device: string, status: string): void {
    this.devices.get(device)!.finalStatus = status;
  }

  deviceStats(): { replayed: number; live: number } {
    let replayed = 0;
    let live = 0;
    for (const d of this.devices.values()) {
      replayed += d.replayed;
      live += d.live;
    }
    return { replayed, live };
  }

  verdict(history: StoredMessage[], stream: StoredMessage[]): Verdict {
    const details: string[] = [];
    const lost = new Set<string>();
    const duplicated = new Set<string>();
    const note = (s: string) => {
      if (details.length < 40) details.push(s);
    };
    for (const m of this.ackMismatch) {
      duplicated.add(m);
      note(`duplicated: ${m}`);
    }
    for (const [source, stored] of [
      ['history', history],
      ['stream', stream],
    ] as const) {
      const byKey = new Map<string, StoredMessage[]>();
      for (const m of stored) {
        const k = key(m.conversationId, m.sender, m.clientMsgId);
        byKey.set(k, [...(byKey.get(k) ?? []), m]);
      }
      for (const [k, copies] of byKey) {
        if (copies.length > 1) {
          duplicated.add(`${source}:${k}`);
          note(`duplicated: ${k} stored ${copies.length} times in the ${source} (seqs ${copies.map((c) => c.seq).join(', ')})`);
        }
      }
      for (const [k, a] of this.acks) {
        const copies = byKey.get(k);
        if (!copies) {
          lost.add(k);
          note(`lost: ${k} (acked as ${a.messageId}@${a.seq} via ${a.gateway}) missing from the ${source}`);
        } else if (!copies.some((c) => c.messageId === a.messageId && c.seq === a.seq)) {
          duplicated.add(`${source}:${k}`);
          note(`duplicated: ${k} acked as ${a.messageId}@${a.seq} but the ${source} holds ${copies.map((c) => `${c.messageId}@${c.seq}`).join(', ')}`);
        }
      }
    }
    const devicesNotComplete: string[] = [];
    let devicesChecked = 0;
    for (const [name, d] of this.devices) {
      if (d.finalStatus !== 'complete') {
        devicesNotComplete.push(`${name}: ${d.finalStatus ?? 'no final resume'}`);
        continue;
      }
      devicesChecked++;
      for (const [k, a] of this.acks) {
        if (!d.conversations.has(a.conversationId) || d.seen.has(`${a.conversationId}@${a.seq}`)) continue;
        lost.add(k);
        note(`lost: ${k} (seq ${a.seq}) never reached device ${name}`);
      }
    }
    for (const m of this.deviceDuplicates) note(`duplicated: ${m}`);
    for (const m of this.deviceMisorders) note(`misordered: ${m}`);
    return {
      acked: this.acks.size,
      lost: lost.size,
      duplicated: duplicated.size + this.deviceDuplicates.length,
      misordered: this.deviceMisorders.length,
      details,
      devicesChecked,
      devicesNotComplete,
    };
  }
}
