/** The inbox of the memory store: every copy is stored when enqueue returns. */

import { usernameKey } from "../../protocol/names.ts";
import { Completion } from "../completion.ts";
import { messageSize, SHARED_MIN_BYTES, shareOf } from "../inbox.ts";
import { storable } from "../storable.ts";
import type {
  ChatMessage,
  Enqueued,
  InboxItem,
  InboxLimits,
  InboxStore,
  QueueRefusal,
} from "../types.ts";

/** Fixed overhead counted per copy of shared content, as the KV store counts a row. */
const ITEM_OVERHEAD = 64;

interface Counts {
  count: number;
  bytes: number;
}

interface Inbox extends Counts {
  /** seq → item, in seq order (seqs only rise). */
  items: Map<number, InboxItem>;
  /** The last seq given out: seqs are never reused, not even after the inbox empties. */
  lastSeq: number;
  bySender: Map<string, Counts>;
}

export interface MemoryInboxData {
  inboxes: Map<string, Inbox>;
  /** Bytes stored per sender (costs). */
  stored: Map<string, number>;
  storedTotal: number;
}

export function newInboxData(): MemoryInboxData {
  return { inboxes: new Map(), stored: new Map(), storedTotal: 0 };
}

const senderOf = (m: ChatMessage) => usernameKey(m.from);

function add(counts: Counts, n: number, bytes: number): void {
  counts.count += n;
  counts.bytes += bytes;
  if (counts.count < 0 || counts.bytes < 0) throw new Error("Inbox counts below zero");
}

/** Why `q` takes no more of this sender's messages of `size`, or null if it has room. */
function roomFor(q: Inbox, sender: string, size: number, limits: InboxLimits) {
  if (q.count + 1 > limits.maxMessages || q.bytes + size > limits.maxBytes) return "full";
  const percent = limits.senderSharePercent ?? 100;
  const mine = q.bySender.get(sender);
  if (percent >= 100 || !mine) return null;
  const share = shareOf(limits, percent);
  return mine.count + 1 > share.messages || mine.bytes + size > share.bytes ? "capped" : null;
}

/** What each of `copies` copies stands for: content shared by several is counted once. */
function costOf(m: ChatMessage, size: number, copies: number): number {
  const content = m.image?.length ?? (m.text?.length ?? 0) * 3;
  if (copies < 2 || content < SHARED_MIN_BYTES) return size;
  return ITEM_OVERHEAD + (m.name?.length ?? 0) + Math.ceil(content / copies);
}

export class MemoryInbox implements InboxStore {
  constructor(private readonly data: MemoryInboxData) {}

  #inbox(user: string): Inbox {
    let q = this.data.inboxes.get(user);
    if (!q) {
      q = { items: new Map(), lastSeq: 0, count: 0, bytes: 0, bySender: new Map() };
      this.data.inboxes.set(user, q);
    }
    return q;
  }

  #store(sender: string, cost: number): void {
    const now = (this.data.stored.get(sender) ?? 0) + cost;
    if (now < 0) throw new Error("Stored bytes below zero");
    this.data.stored.set(sender, now);
    this.data.storedTotal += cost;
  }

  #refused(sender: string, cost: number, limits: InboxLimits): QueueRefusal | null {
    if (limits.maxTotalBytes !== undefined && this.data.storedTotal + cost > limits.maxTotalBytes) {
      return "store_full";
    }
    const mine = this.data.stored.get(sender) ?? 0;
    return limits.maxSenderBytes !== undefined && mine + cost > limits.maxSenderBytes
      ? "sender_full"
      : null;
  }

  enqueue(
    recipients: string[],
    sent: ChatMessage,
    limits: InboxLimits,
    _acksSoon?: (user: string) => boolean,
    placed?: (queued: readonly InboxItem[]) => void,
  ): Enqueued {
    const sender = senderOf(sent);
    const size = messageSize(sent);
    const full: string[] = [];
    const capped: string[] = [];
    const taking: { user: string; q: Inbox }[] = [];
    for (const user of recipients) {
      const q = this.#inbox(user);
      const room = roomFor(q, sender, size, limits);
      if (room === "full") full.push(user);
      else if (room === "capped") capped.push(user);
      else taking.push({ user, q });
    }
    const each = costOf(sent, size, taking.length);
    const refused = this.#refused(sender, each * taking.length, limits);
    const durable = new Completion();
    durable.resolve();
    if (refused !== null) return { queued: [], full: [], capped: [], refused, cost: 0, durable };
    const message = storable(sent);
    const queued = taking.map(({ user, q }) => {
      const stored: InboxItem = { user, seq: ++q.lastSeq, message, size, cost: each };
      q.items.set(stored.seq, stored);
      add(q, 1, size);
      let mine = q.bySender.get(sender);
      if (!mine) q.bySender.set(sender, mine = { count: 0, bytes: 0 });
      add(mine, 1, size);
      this.#store(sender, each);
      return { ...stored };
    });
    if (queued.length > 0) placed?.(queued);
    return { queued, full, capped, refused: null, cost: each * queued.length, durable };
  }

  append(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
  ): Promise<Omit<Enqueued, "durable">> {
    const { durable: _, ...rest } = this.enqueue(recipients, message, limits);
    return Promise.resolve(rest);
  }

  settle(): Promise<void> {
    return Promise.resolve();
  }

  read(user: string, after: number, limit: number, maxBytes = Infinity): Promise<InboxItem[]> {
    const out: InboxItem[] = [];
    let bytes = 0;
    for (const item of this.data.inboxes.get(user)?.items.values() ?? []) {
      if (item.seq <= after) continue;
      if (out.length >= limit || (out.length > 0 && bytes + item.size > maxBytes)) break;
      bytes += item.size;
      out.push({ ...item });
    }
    return Promise.resolve(out);
  }

  remove(user: string, items: InboxItem[]): Promise<void> {
    const q = this.data.inboxes.get(user);
    for (const { seq } of items) {
      const item = q?.items.get(seq);
      if (!q || !item) continue; // counted out already
      q.items.delete(seq);
      const sender = senderOf(item.message);
      add(q, -1, -item.size);
      add(q.bySender.get(sender)!, -1, -item.size);
      this.#store(sender, -item.cost);
    }
    return Promise.resolve();
  }

  stats(user: string): Promise<{ count: number; bytes: number }> {
    const q = this.data.inboxes.get(user);
    return Promise.resolve({ count: q?.count ?? 0, bytes: q?.bytes ?? 0 });
  }

  storedBytes(sender?: string): number {
    return sender === undefined
      ? this.data.storedTotal
      : this.data.stored.get(usernameKey(sender)) ?? 0;
  }

  queued(): Promise<{ count: number; bytes: number }> {
    const all = { count: 0, bytes: 0 };
    for (const q of this.data.inboxes.values()) add(all, q.count, q.bytes);
    return Promise.resolve(all);
  }

  clear(user: string): Promise<void> {
    return this.remove(user, [...this.data.inboxes.get(user)?.items.values() ?? []]);
  }
}
