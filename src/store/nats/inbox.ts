/**
 * Inboxes (undelivered messages) in JetStream. Layout and why:
 *
 * - Stream `<prefix>_inbox`, subjects `<prefix>.inbox.<userToken>`, R3 on disk, discard new:
 *   one message per queued copy. An item's seq is its stream sequence, so it rises per user and
 *   is never reused, across restarts and nodes, with no counter to keep. A read GETs, through
 *   the stream's leader, the next message on the user's subject after a seq (`next_by_subj`);
 *   an acknowledgement deletes the message by seq. The delete is the one truth of "counted out":
 *   a second delete of the same seq (a late ACK, another node's ACK of a copy) fails, and only
 *   the delete that succeeded gives back counts.
 * - KV `<prefix>_inboxes` (counts.ts): per user, messages, bytes and per sender, changed by
 *   compare-and-set: reserved before the publish, given back after the delete.
 * - KV `<prefix>_stored` (stored.ts): bytes in the store per sender, for the budgets, mirrored
 *   in memory on every node by a watch (`storedBytes` is synchronous).
 * - Stream `<prefix>_blob` + KV `<prefix>_blobrefs` (blobs.ts): content stored once.
 *
 * Nothing is deferred: `enqueue` resolves once JetStream acknowledged every copy (a quorum of
 * the three has it), which is when a copy gets its seq. `acksSoon` is not used: a cancelled
 * write saves little when the write is one publish.
 */

import { usernameKey } from "../../protocol/names.ts";
import { userToken } from "../../cluster/names.ts";
import { invariant } from "../../invariant/invariant.ts";
import { Completion } from "../completion.ts";
import { mayBeShared, messageSize, senderOf, sharedContent as sharedContentOf } from "../inbox.ts";
import { storable } from "../storable.ts";
import type {
  ChatMessage,
  Enqueued,
  InboxItem,
  InboxLimits,
  InboxStore,
  QueueRefusal,
} from "../types.ts";
import { JetStreamApiError } from "../../cluster/nats.ts";
import { Blobs, isGone, nextBySubject } from "./blobs.ts";
import { CasBucket } from "./cas.ts";
import { type BlobRef, decodeRecord, encodeRecord, type InboxRecord } from "./codec.ts";
import type { NatsStoreContext } from "./context.ts";
import { openRecords } from "./kv_records.ts";
import {
  countOf,
  type Counts,
  countsCodec,
  heal,
  healsOf,
  release,
  reserve,
  type Room,
} from "./counts.ts";
import { StoredBytes } from "./stored.ts";
import { ensureStream } from "./streams.ts";

/** Images above this go to a blob even for one recipient, far below NATS's max_payload. */
const INLINE_IMAGE_BYTES = 256 * 1024;
/** Fixed overhead counted per copy of shared content, as the other stores count it. */
const ITEM_OVERHEAD = 64;
/** Deletes in flight at once per removal (each is a round trip through the leader). */
const DELETES_IN_FLIGHT = 64;

const decoder = new TextDecoder();
const NO_ONE: readonly string[] = Object.freeze([]);

/** The content to store once, or null when each record holds its own copy. */
const sharedContent = (m: ChatMessage, copies: number) =>
  sharedContentOf(m, copies, INLINE_IMAGE_BYTES);

/** What each of `copies` copies stands for when they share a blob of `bytes`. */
function sharedCost(m: ChatMessage, bytes: number, copies: number): number {
  return ITEM_OVERHEAD + (m.name?.length ?? 0) + Math.ceil(bytes / Math.max(1, copies));
}

function resolved(): Completion {
  const c = new Completion();
  c.resolve();
  return c;
}

/** One enqueue's place in this process's order: its publishes go out, and are told, in turn. */
class Turn {
  readonly sent: Promise<void>;
  readonly told: Promise<void>;
  markSent!: () => void;
  markTold!: () => void;
  constructor() {
    this.sent = new Promise((r) => this.markSent = r);
    this.told = new Promise((r) => this.markTold = r);
  }
}

export class NatsInbox implements InboxStore {
  readonly #stream: string;
  /** The blob an item handed out names (null: none), for items whose content may be shared. */
  readonly #blobOf = new WeakMap<InboxItem, string | null>();
  /** The enqueue before the next one, in call order. */
  #last: Turn;
  /** Removals and enqueues under way: close() waits for them. */
  readonly #working = new Set<Promise<unknown>>();
  /** Test hook: runs between the reservation and the publish (a node killed there). */
  beforePublish: (() => Promise<void>) | null = null;
  /** Test hook: runs between a removal's deletes and its giving back of the counts. */
  beforeRelease: (() => Promise<void>) | null = null;

  private constructor(
    private readonly ctx: NatsStoreContext,
    private readonly counts: CasBucket<Counts>,
    private readonly stored: StoredBytes,
    private readonly blobs: Blobs,
  ) {
    this.#stream = ctx.streamName("inbox");
    this.#last = new Turn();
    this.#last.markSent();
    this.#last.markTold();
  }

  static async open(ctx: NatsStoreContext): Promise<NatsInbox> {
    await ensureStream(ctx, {
      name: ctx.streamName("inbox"),
      subjects: [ctx.subject("inbox", "*")],
      // A full stream refuses new messages (SENT fails) rather than dropping queued ones.
      discard: "new",
    });
    const [counts, stored, blobs] = await Promise.all([
      openRecords(ctx, "inboxes").then((b) => new CasBucket(b, countsCodec)),
      StoredBytes.open(ctx),
      Blobs.open(ctx),
    ]);
    return new NatsInbox(ctx, counts, stored, blobs);
  }

  #subject(user: string): string {
    return this.ctx.subject("inbox", userToken(user));
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#working.add(work);
    const forget = () => this.#working.delete(work);
    work.then(forget, forget);
    return work;
  }

  async append(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
  ): Promise<Omit<Enqueued, "durable">> {
    const { durable, ...placed } = await this.enqueue(recipients, message, limits);
    await durable.promise();
    return placed;
  }

  enqueue(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
    _acksSoon?: (user: string) => boolean,
    placed?: (queued: readonly InboxItem[]) => void,
  ): Promise<Enqueued> {
    // The turn is taken now, in call order: seqs follow it whatever the awaits before publishing.
    const prev = this.#last;
    const turn = new Turn();
    this.#last = turn;
    const work = this.#enqueue(recipients, storable(message), limits, placed, prev, turn);
    work.finally(() => {
      turn.markSent();
      turn.markTold();
    }).catch(() => {});
    return this.#track(work);
  }

  async #enqueue(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
    placed: ((queued: readonly InboxItem[]) => void) | undefined,
    prev: Turn,
    turn: Turn,
  ): Promise<Enqueued> {
    const sender = senderOf(message);
    const size = messageSize(message);
    const now = this.ctx.clock.wall();
    // Room first, in every recipient's counts at once; each check-and-take is one CAS.
    const rooms: Room[] = await Promise.all(
      recipients.map((user) => this.counts.apply(user, reserve(sender, size, limits, now))),
    );
    const full: string[] = [];
    const capped: string[] = [];
    const takers: string[] = [];
    rooms.forEach((room, i) => {
      if (room === "full") full.push(recipients[i]);
      else if (room === "capped") capped.push(recipients[i]);
      else takers.push(recipients[i]);
    });
    if (takers.length === 0) {
      return { queued: [], full, capped, refused: null, cost: 0, durable: resolved() };
    }
    const sizes = new Map([[sender, [1, size] as [number, number]]]);
    // As the reservations left them: a heal since would have counted an unpublished one out.
    const heals = new Map(takers.map((user) => [user, healsOf(this.counts.peek(user))]));
    const giveBack = (users: string[]) =>
      Promise.all(
        users.map((user) => this.counts.apply(user, release(sizes, heals.get(user) ?? 0))),
      );
    const content = sharedContent(message, takers.length);
    const cost = content ? sharedCost(message, content.length, takers.length) : size;
    const refused = await this.#budget(sender, cost * takers.length, limits);
    if (refused) {
      await giveBack(takers);
      return { queued: [], full: NO_ONE, capped: NO_ONE, refused, cost: 0, durable: resolved() };
    }
    let blob: BlobRef | undefined;
    try {
      if (content) blob = await this.blobs.write(content, !message.image, takers.length);
    } catch (e) {
      await Promise.all([giveBack(takers), this.stored.add(sender, -cost * takers.length)]);
      throw e;
    }
    const record: InboxRecord = {
      message: !blob
        ? message
        : blob.text
        ? { ...message, text: undefined }
        : { ...message, image: undefined },
      size,
      cost,
    };
    if (blob) record.blob = blob;
    const data = encodeRecord(record);
    if (this.beforePublish) await this.beforePublish();
    await prev.sent;
    // Sent now, one after another on this connection, so each user's seqs follow call order.
    const msgID = blob?.id ?? crypto.randomUUID();
    const acks = takers.map((user, i) =>
      this.ctx.js.publish(this.#subject(user), data, { msgID: `${msgID}.${i}`, retries: 3 })
    );
    turn.markSent();
    const results = await Promise.allSettled(acks);
    const queued: InboxItem[] = [];
    const failed: string[] = [];
    let error: Error | null = null;
    results.forEach((r, i) => {
      if (r.status === "rejected") {
        // Given back only when JetStream refused the copy. A copy whose answer never came (every
        // retry timed out: a NATS server died) may be stored all the same, and its record then
        // names the blob and counts as queued: kept, as a node killed before its publish keeps
        // them (an over-count the next whole read heals), never a record whose blob is gone.
        if (isRefusal(r.reason)) failed.push(takers[i]);
        error ??= r.reason as Error;
        return;
      }
      const item: InboxItem = { user: takers[i], seq: r.value.seq, message, size, cost };
      if (mayBeShared(message)) this.#blobOf.set(item, blob?.id ?? null);
      queued.push(item);
    });
    if (failed.length > 0) {
      // Not stored: its room is given back.
      await Promise.allSettled([
        giveBack(failed),
        this.stored.add(sender, -cost * failed.length),
        blob ? this.blobs.release(blob.id, failed.length) : null,
      ]);
    }
    await prev.told;
    if (queued.length > 0) placed?.(queued);
    turn.markTold();
    const durable = new Completion();
    if (error) durable.reject(error);
    else durable.resolve();
    return { queued, full, capped, refused: null, cost: cost * queued.length, durable };
  }

  /**
   * Why the store takes no more of this sender's content, or null once `cost` more bytes are
   * counted to the sender. The sender's budget is exact (its key's CAS); the store's is checked
   * against the mirror, which may lag other nodes' writes by a moment.
   */
  async #budget(sender: string, cost: number, limits: InboxLimits): Promise<QueueRefusal | null> {
    if (limits.maxTotalBytes !== undefined && this.stored.total() + cost > limits.maxTotalBytes) {
      return "store_full";
    }
    return await this.stored.take(sender, cost, limits.maxSenderBytes) ? null : "sender_full";
  }

  settle(): Promise<void> {
    return Promise.resolve();
  }

  async read(
    user: string,
    after: number,
    limit: number,
    maxBytes = Number.MAX_SAFE_INTEGER,
  ): Promise<InboxItem[]> {
    const out: InboxItem[] = [];
    const subject = this.#subject(user);
    let bytes = 0;
    let seq = after + 1;
    let end = false;
    while (out.length < limit) {
      const m = await this.ctx.jsm.streams.getMessage(this.#stream, nextBySubject(seq, subject));
      if (!m) {
        end = true;
        break;
      }
      const record = decodeRecord(m.data);
      // Always at least one item, so a single large image still gets through.
      if (out.length > 0 && bytes + record.size > maxBytes) break;
      bytes += record.size;
      let message = record.message;
      if (record.blob) {
        const content = await this.blobs.read(record.blob);
        message = record.blob.text
          ? { ...message, text: decoder.decode(content) }
          : { ...message, image: content };
      }
      const item: InboxItem = { user, seq: m.seq, message, size: record.size, cost: record.cost };
      if (record.blob || mayBeShared(message)) this.#blobOf.set(item, record.blob?.id ?? null);
      out.push(item);
      seq = m.seq + 1;
    }
    if (after === 0 && end) await this.#heal(user, out);
    return out;
  }

  /** The whole inbox was read: counts above it, left by a node killed mid-enqueue, come down. */
  async #heal(user: string, items: InboxItem[]): Promise<void> {
    const actual = countOf(items.map((i) => ({ sender: senderOf(i.message), size: i.size })));
    const known = await this.counts.read(user);
    if (known.n <= actual.n && known.b <= actual.b) return;
    await this.counts.apply(user, heal(actual, this.ctx.clock.wall()));
  }

  remove(user: string, items: InboxItem[]): Promise<void> {
    return this.#track(this.#remove(user, items));
  }

  async #remove(user: string, items: InboxItem[]): Promise<void> {
    const seen = new Set<number>();
    const unique = items.filter((i) => !seen.has(i.seq) && seen.add(i.seq));
    // Before deleting: a heal after this may count our deletes out (counts.ts). A cached value
    // is older if anything, which can only make the release skip: an over-count.
    const heals = healsOf(this.counts.peek(user) ?? await this.counts.read(user));
    // The blob of each item, known for those handed out here, read for copies from elsewhere.
    const blobs = await Promise.all(unique.map((i) => this.#blobNamedBy(i)));
    // Deleted one by one: only the deletes that succeed count out (see the header).
    const gone: boolean[] = new Array(unique.length).fill(false);
    let error: Error | null = null;
    for (let at = 0; at < unique.length; at += DELETES_IN_FLIGHT) {
      const slice = unique.slice(at, at + DELETES_IN_FLIGHT);
      const results = await Promise.allSettled(
        slice.map((i) => this.ctx.jsm.streams.deleteMessage(this.#stream, i.seq, false)),
      );
      results.forEach((r, k) => {
        if (r.status === "fulfilled") gone[at + k] = r.value;
        else if (!isGone(r.reason)) error ??= r.reason as Error;
      });
    }
    const counts = new Map<string, [number, number]>();
    const costs = new Map<string, number>();
    const refs = new Map<string, number>();
    unique.forEach((item, k) => {
      if (!gone[k]) return;
      const sender = senderOf(item.message);
      const c = counts.get(sender) ?? [0, 0];
      counts.set(sender, [c[0] + 1, c[1] + item.size]);
      costs.set(sender, (costs.get(sender) ?? 0) + item.cost);
      const blob = blobs[k];
      if (blob) refs.set(blob, (refs.get(blob) ?? 0) + 1);
    });
    if (counts.size > 0) {
      if (this.beforeRelease) await this.beforeRelease();
      await Promise.all([
        this.counts.apply(user, release(counts, heals)),
        ...[...costs].map(([sender, cost]) => this.stored.add(sender, -cost)),
        ...[...refs].map(([blob, n]) => this.blobs.release(blob, n)),
      ]);
    }
    // Those that failed are still stored and counted: a later ACK removes them.
    if (error) throw error;
  }

  /** The blob an item's record names, if any: null for a record already deleted. */
  async #blobNamedBy(item: InboxItem): Promise<string | null> {
    const known = this.#blobOf.get(item);
    if (known !== undefined) return known;
    if (!mayBeShared(item.message)) return null;
    const m = await this.ctx.jsm.streams.getMessage(this.#stream, { seq: item.seq });
    return m ? decodeRecord(m.data).blob?.id ?? null : null;
  }

  async stats(user: string): Promise<{ count: number; bytes: number }> {
    const v = await this.counts.read(user);
    return { count: v.n, bytes: v.b };
  }

  storedBytes(sender?: string): number {
    return sender === undefined ? this.stored.total() : this.stored.of(usernameKey(sender));
  }

  /**
   * The inboxes this process has read or written, as it last saw them: no scan of the bucket
   * (other nodes' changes since show up at this node's next read of each).
   */
  queued(): Promise<{ count: number; bytes: number }> {
    const all = { count: 0, bytes: 0 };
    for (const [, { value }] of this.counts.cached()) {
      all.count += value.n;
      all.bytes += value.b;
    }
    return Promise.resolve(all);
  }

  async clear(user: string): Promise<void> {
    while (true) {
      const items = await this.read(user, 0, 200);
      if (items.length === 0) return;
      await this.remove(user, items);
    }
  }

  async close(): Promise<void> {
    while (this.#working.size > 0) await Promise.allSettled([...this.#working]);
    this.stored.close();
    invariant(this.#working.size === 0, "nothing is under way once the inbox is closed");
  }
}

/** Whether a publish failed because JetStream said no (so nothing was stored). */
function isRefusal(e: unknown): boolean {
  return e instanceof JetStreamApiError;
}

export async function openInbox(
  ctx: NatsStoreContext,
): Promise<InboxStore & { close(): Promise<void> }> {
  return await NatsInbox.open(ctx);
}
