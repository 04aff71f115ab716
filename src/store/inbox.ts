/**
 * The offline queue: every private or group message waits in its recipient's inbox until the
 * recipient's client acknowledges it, then it is deleted. Keys:
 *   ["inbox", user, seq] → StoredItem
 *   ["blob", blobId, i] → chunk of a message's content stored once: a large image, or the text
 *                         or image of a message to several recipients
 *   ["blob_ref", blobId, user, seq] → true     (the blob goes when its last ref does)
 *   ["blob_pending", blobId, ...] → Date       (a blob that may have no ref: checked at start)
 * Writes go through the group committer. This process owns the KV file, so each user's counts
 * (next seq, messages, bytes, and per sender) live in memory in the ledger (ledger.ts), rebuilt
 * from the inbox at start (load) or first use: one row per message and no counter row to
 * rewrite with each of them. Rows written before content was shared (an image or text inline in
 * every row, no `cost`) are read as they are: the layout only gained optional fields.
 *
 * The items handed out are plain data. What the store must still know of them stays here: per
 * user, the deferred writes holding rows that an ACK may still cancel (DeferredRows, by seq,
 * only until the writes leave), and per item the blob its content is in (#blobOf). */

import { randomBytes } from "../crypto/keys.ts";
import { invariant } from "../invariant/invariant.ts";
import { usernameKey } from "../protocol/names.ts";
import {
  type GroupCommitter,
  MAX_BATCH_BYTES,
  MAX_BATCH_MUTATIONS,
  type PendingWrite,
} from "./committer.ts";
import { Completion } from "./completion.ts";
import { type InboxLedger, Ledger, type SenderShare } from "./ledger.ts";
import { storable } from "./storable.ts";
import type {
  ChatMessage,
  Enqueued,
  InboxItem,
  InboxLimits,
  InboxStore,
  QueueRefusal,
} from "./types.ts";

/** Images up to this size live inside the inbox entry; larger ones are chunked (values ≤ 64 KiB). */
const INLINE_IMAGE_BYTES = 48 * 1024;
const CHUNK_BYTES = 60 * 1024;
/**
 * How long a row for an online recipient waits before it is committed. Clients acknowledge
 * within a round trip, so most such rows are cancelled by their ACK and never written; the
 * wait only delays SENT when the recipient is slow to answer. Under load acknowledgements queue
 * too: fan-out to 100 members ran at 72-80k deliveries/s with 25 ms and 90-92k with 100 ms.
 */
export const DEFER_MS = 100;
/**
 * Content at least this large, sent to more than one recipient, is stored once in a blob that
 * every recipient's row names: an inline copy per row made a 48 KiB image to a group of 500 write
 * 24 MiB. Below it a copy per row costs less than the blob's own commits and rows.
 */
export const SHARED_MIN_BYTES = 1024;
/** What a row naming a blob (and its ref) counts for in a commit's bytes: far more than it holds. */
const BLOB_ROW_BYTES = 1024;
/** Fixed overhead counted per queued message, so that empty messages still count. */
const ITEM_OVERHEAD = 64;

export interface BlobRef {
  id: string;
  chunks: number;
  size: number;
  /** The blob holds the message's text in UTF-8 (absent: its image). */
  text?: true;
}

export interface StoredItem {
  message: ChatMessage;
  blob?: BlobRef;
  size: number;
  /** Bytes the row stands for in the store (its share of a blob); absent in old rows: `size`. */
  cost?: number;
}

/**
 * One user's rows in deferred writes that an ACK may still cancel, in seq order: a user's rows
 * are deferred in the order their seqs are taken, and acknowledged in that order. An entry goes
 * once an ACK passes it or its write has left (taken into a commit, or settled). Kept by seq
 * rather than by item: any copy of an item finds its rows. The list keeps its room when it
 * empties, so that a user's next message allocates nothing.
 */
class DeferredRows {
  /** Entries of three from #head to #end: seq, write, index of the item's first row in it. */
  #entries: (number | PendingWrite | null)[] = [];
  #head = 0;
  #end = 0;
  /** The write last promoted, so that it is not promoted again. */
  #promoted: PendingWrite | null = null;

  get empty(): boolean {
    return this.#head === this.#end;
  }

  add(seq: number, write: PendingWrite, at: number): void {
    this.#compact();
    const e = this.#entries;
    const end = this.#end;
    invariant(this.empty || (e[end - 3] as number) < seq, "deferred rows come in seq order");
    if (end === e.length) {
      e.push(seq, write, at);
    } else {
      e[end] = seq;
      e[end + 1] = write;
      e[end + 2] = at;
    }
    this.#end = end + 3;
  }

  /**
   * Cancels the rows of `seq` if its write has not left; true if they were cancelled. Entries
   * before it go: the ACK passed them.
   */
  cancel(seq: number, size: number): boolean {
    const e = this.#entries;
    const end = this.#end;
    let head = this.#head;
    while (head < end && (e[head] as number) < seq) head += 3;
    if (head === end || e[head] !== seq) {
      this.#head = head;
      this.#compact();
      return false;
    }
    const write = e[head + 1] as PendingWrite;
    const at = e[head + 2] as number;
    // Moved on first: a write whose last row this cancels settles at once, and drops entries.
    this.#head = head + 3;
    const cancelled = cancelRows(write, at, size);
    this.#compact();
    return cancelled;
  }

  /** Drops the entries at the front whose write has left: nothing can cancel them now. */
  dropLeft(): void {
    const e = this.#entries;
    let head = this.#head;
    while (head < this.#end && (e[head + 1] as PendingWrite).taken) head += 3;
    this.#head = head;
    this.#compact();
  }

  /** The latest write still waiting, unless it was promoted already. */
  toPromote(): PendingWrite | null {
    const e = this.#entries;
    for (let i = this.#end - 2; i > this.#head; i -= 3) {
      const write = e[i] as PendingWrite;
      if (write.taken) continue;
      if (write === this.#promoted) return null;
      this.#promoted = write;
      return write;
    }
    return null;
  }

  /** Lets go of the writes before the head, once the list is empty or they are most of it. */
  #compact(): void {
    const e = this.#entries;
    const head = this.#head;
    const end = this.#end;
    if (head === end) {
      if (end === 0) return;
      if (e.length > MAX_KEPT_ENTRIES) this.#entries = [];
      else for (let i = 1; i < end; i += 3) e[i] = null;
      this.#head = this.#end = 0;
      this.#promoted = null;
    } else if (head >= 96 && head * 2 >= end) {
      e.copyWithin(0, head, end);
      const n = end - head;
      for (let i = n + 1; i < end; i += 3) e[i] = null;
      this.#head = 0;
      this.#end = n;
    }
  }
}

/** Room a user's emptied DeferredRows keeps (three per row): a burst's is given back. */
const MAX_KEPT_ENTRIES = 3 * 256;
/** Users whose emptied DeferredRows are kept for their next message; past it they go. */
const MAX_IDLE_DEFERRED_USERS = 4096;

/**
 * The rows of one enqueue that go out in one write. It starts with its first item's rows: an
 * array that is pushed to from empty gets room for 17, and a private message's batch (one item,
 * one row) lives until its recipient acknowledges it, a second under full load.
 */
class RowBatch {
  readonly items: InboxItem[];
  readonly mutations: Deno.KvMutation[];
  constructor(
    readonly placement: Placement,
    readonly deferred: boolean,
    item: InboxItem,
    rows: Deno.KvMutation[],
  ) {
    this.items = [item];
    this.mutations = rows;
  }

  add(item: InboxItem, rows: Deno.KvMutation[]): void {
    this.items.push(item);
    this.mutations.push(...rows);
  }
}

/**
 * Where one enqueue's writes stand. It completes once every batch is committed or cancelled,
 * and fails if any batch failed.
 */
class Placement extends Completion {
  #stored: StoredItem | null = null;
  batches = 0;
  /** Batches not settled yet. */
  waiting = 0;
  failed = 0;
  error: Error | null = null;
  queuedCount = 0;
  /** Some row naming the blob was committed (so the blob is referenced in the store). */
  committed = false;
  constructor(
    readonly blob: BlobRef | undefined,
    readonly message: ChatMessage,
    readonly size: number,
    /** What each row stands for in the store. */
    readonly cost: number,
  ) {
    super();
  }

  /** The rows' value, one for every row of the enqueue, made when the first row is. */
  storedItem(): StoredItem {
    const blob = this.blob;
    const message = !blob
      ? this.message
      : blob.text
      ? { ...this.message, text: undefined }
      : { ...this.message, image: undefined };
    return this.#stored ??= { message, blob, size: this.size, cost: this.cost };
  }
}

/**
 * Stands for a deferred write's row until the write is taken into a commit: most rows for online
 * recipients are cancelled by their ACK before then, and so never need a row, a key or a value.
 * It is never committed (see #batchTaken).
 */
const UNBUILT_ROW: Deno.KvMutation = Object.freeze({
  type: "delete",
  key: Object.freeze(["unbuilt"]),
});

const NO_ONE: readonly string[] = Object.freeze([]);
const never = () => false;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Why a recipient's inbox takes no more from this sender, or null if it has room. */
function roomFor(
  q: InboxLedger,
  sender: string,
  size: number,
  limits: InboxLimits,
): "full" | "share" | null {
  if (q.count + 1 > limits.maxMessages || q.bytes + size > limits.maxBytes) return "full";
  const percent = limits.senderSharePercent ?? 100;
  if (percent >= 100) return null;
  const mine = q.bySender.get(sender);
  if (!mine) return null;
  const share = shareOf(limits, percent);
  return mine.count + 1 > share.messages || mine.bytes + size > share.bytes ? "share" : null;
}

/** The part of an inbox one sender may fill. */
export function shareOf(limits: InboxLimits, percent: number): SenderShare & { messages: number } {
  return {
    count: 0,
    // Rounded up: a share is never empty.
    messages: Math.ceil(limits.maxMessages * percent / 100),
    bytes: Math.ceil(limits.maxBytes * percent / 100),
  };
}

/** A message's sender as an identity (the lowercase name). */
export const senderOf = (m: ChatMessage): string => usernameKey(m.from);

/**
 * The content to store once for all recipients, or null when each row holds its own copy: an
 * image larger than `inlineImageBytes` always (a KV value is at most 64 KiB), and text or an image
 * of SHARED_MIN_BYTES or more when it goes to several recipients.
 */
export function sharedContent(
  m: ChatMessage,
  recipients: number,
  inlineImageBytes = INLINE_IMAGE_BYTES,
): Uint8Array | null {
  if (m.image !== undefined) {
    const big = m.image.length > inlineImageBytes;
    return big || (recipients > 1 && m.image.length >= SHARED_MIN_BYTES) ? m.image : null;
  }
  if (recipients > 1 && m.text !== undefined && m.text.length * 3 >= SHARED_MIN_BYTES) {
    const bytes = encoder.encode(m.text);
    return bytes.length >= SHARED_MIN_BYTES ? bytes : null;
  }
  return null;
}

/** Whether some copy of the message may hold its content in a blob (see sharedContent). */
export function mayBeShared(m: ChatMessage): boolean {
  return m.image !== undefined || (m.text !== undefined && m.text.length * 3 >= SHARED_MIN_BYTES);
}

/** What a message costs against the recipient's queue limit. */
export function messageSize(m: ChatMessage): number {
  return ITEM_OVERHEAD + (m.text?.length ?? 0) * 3 + (m.image?.length ?? 0) + (m.name?.length ?? 0);
}

export class KvInboxStore implements InboxStore {
  /** Rows cancelled by an acknowledgement before they were committed, for benchmarks. */
  absorbed = 0;
  /** Each inbox's counts, as they are being counted or once known (then also in #ledger). */
  readonly #stats = new Map<string, Promise<InboxLedger>>();
  readonly #ledger = new Ledger();
  /** Each user's rows in deferred writes that have not left (kept a while once empty). */
  readonly #deferred = new Map<string, DeferredRows>();
  /**
   * The blob holding an item's content (null: none), for the items handed out whose content may
   * be stored apart (mayBeShared). A copy of such an item is not here: its row is read.
   */
  readonly #blobOf = new WeakMap<InboxItem, string | null>();
  /** Removals of chunked images not finished yet. */
  readonly #removing = new Set<Promise<void>>();
  /** Every inbox has been counted (load): one not in the ledger is empty. */
  #loaded = false;

  constructor(
    private readonly kv: Deno.Kv,
    private readonly committer: GroupCommitter,
    /** How long rows for online recipients wait (tests lengthen it to make races certain). */
    private readonly deferMs = DEFER_MS,
  ) {}

  #queue(user: string): Promise<InboxLedger> {
    let stats = this.#stats.get(user);
    if (!stats && this.#loaded) return Promise.resolve(this.#empty(user));
    if (!stats) {
      stats = this.#count(user);
      this.#stats.set(user, stats);
      // A failed count is tried again next time rather than kept.
      stats.catch(() => this.#stats.delete(user));
    }
    return stats;
  }

  /** The recipients' counts if all are known already: the common case needs no await. */
  #countedAll(recipients: string[]): InboxLedger[] | null {
    const out: InboxLedger[] = [];
    for (const user of recipients) {
      const q = this.#ledger.get(user) ?? (this.#loaded ? this.#empty(user) : null);
      if (!q) return null;
      out.push(q);
    }
    return out;
  }

  /**
   * The counts of an inbox known to be empty: once every inbox was counted (load), one not
   * counted has no rows. Made at once, so that no second object can stand for the same inbox.
   */
  #empty(user: string): InboxLedger {
    invariant(this.#loaded && !this.#stats.has(user), "an inbox is counted once");
    const q = this.#ledger.open(user);
    this.#stats.set(user, Promise.resolve(q));
    return q;
  }

  /**
   * Counts every inbox once, at start: the store-wide and per-sender budgets need the totals,
   * and every enqueue after it finds its recipients' counts in memory. Reads each row once.
   */
  async load(): Promise<void> {
    invariant(this.#stats.size === 0, "load() comes first");
    let q: InboxLedger | null = null;
    for await (const e of this.kv.list<StoredItem>({ prefix: ["inbox"] })) {
      if (q === null || e.key[1] !== q.user) {
        q = this.#ledger.open(e.key[1] as string);
        this.#stats.set(q.user, Promise.resolve(q));
      }
      this.#countRow(q, e);
    }
    this.#loaded = true;
  }

  async #count(user: string): Promise<InboxLedger> {
    const rows = [];
    for await (const e of this.kv.list<StoredItem>({ prefix: ["inbox", user] })) rows.push(e);
    // Counted in only once the whole inbox is read, so that a failed read adds nothing.
    const q = this.#ledger.open(user);
    for (const e of rows) this.#countRow(q, e);
    return q;
  }

  #countRow(q: InboxLedger, e: Deno.KvEntry<StoredItem>): void {
    const { message, size, cost } = e.value;
    this.#ledger.load(q, e.key[2] as number, senderOf(message), size, cost ?? size);
  }

  /**
   * Why the store takes no more of this sender's content (`cost` more bytes), or null: the
   * store's budget and each sender's are counted in bytes as stored, a shared blob once.
   */
  #overBudget(sender: string, cost: number, limits: InboxLimits): QueueRefusal | null {
    const ledger = this.#ledger;
    if (limits.maxTotalBytes !== undefined && ledger.storedBytes() + cost > limits.maxTotalBytes) {
      return "store_full";
    }
    const sent = ledger.storedBytes(sender);
    if (limits.maxSenderBytes !== undefined && sent + cost > limits.maxSenderBytes) {
      return "sender_full";
    }
    return null;
  }

  /** Bytes in the store for queued messages: all of them, and `sender`'s. */
  storedBytes(sender?: string): number {
    return this.#ledger.storedBytes(sender);
  }

  async #writeBlob(content: Uint8Array, text: boolean): Promise<BlobRef> {
    const id = randomBytes(16).toHex();
    const chunks = Math.ceil(content.length / CHUNK_BYTES);
    const mutations: Deno.KvMutation[] = [];
    for (let i = 0; i < chunks; i++) {
      mutations.push({
        type: "set",
        key: ["blob", id, i],
        value: content.slice(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES),
      });
    }
    // Its own commits: a blob is only reachable once an inbox entry names it. Until then a
    // marker says it is in flight, so that a crash in between leaves nothing behind for good.
    // The marker goes with the first chunks (a group's text or small image: with all of them).
    mutations.unshift({ type: "set", key: ["blob_pending", id], value: new Date() });
    for (let i = 0; i < mutations.length; i += 8) {
      await this.committer.write(mutations.slice(i, i + 8), 8 * CHUNK_BYTES);
    }
    const blob: BlobRef = { id, chunks, size: content.length };
    if (text) blob.text = true;
    return blob;
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
    acksSoon: (user: string) => boolean = never,
    placed?: (queued: readonly InboxItem[]) => void,
  ): Enqueued | Promise<Enqueued> {
    const stats = this.#countedAll(recipients);
    const shared = sharedContent(message, recipients.length);
    // The common case (counts known, no blob to write first) waits for nothing.
    if (stats && !shared) {
      return tell(this.#place(recipients, stats, message, limits, undefined, acksSoon), placed);
    }
    return this.#enqueueAfterReads(recipients, message, limits, acksSoon, shared, placed);
  }

  async #enqueueAfterReads(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
    acksSoon: (user: string) => boolean,
    shared: Uint8Array | null,
    placed: ((queued: readonly InboxItem[]) => void) | undefined,
  ): Promise<Enqueued> {
    const stats = this.#countedAll(recipients) ??
      await Promise.all(recipients.map((user) => this.#queue(user)));
    // The blob is written before any seq is taken, so seqs commit in the order they are given;
    // not at all when no queue takes the message, or a budget refuses it (#place checks again).
    const size = messageSize(message);
    const sender = senderOf(message);
    const takers = stats.filter((q) => roomFor(q, sender, size, limits) === null).length;
    let blob: BlobRef | undefined;
    if (shared && takers > 0) {
      const refused = this.#overBudget(
        sender,
        sharedCost(message, shared.length, takers) * takers,
        limits,
      );
      if (refused) return refusal(refused);
      blob = await this.#writeBlob(shared, message.image === undefined);
    }
    // Told here, not when the promise settles: another enqueue may take the next seqs before
    // this one's caller runs, and what is told must follow seq order.
    return tell(this.#place(recipients, stats, message, limits, blob, acksSoon), placed);
  }

  /**
   * Takes each recipient's seq and queues the rows. Nothing in here awaits, so seqs follow call
   * order and each user's rows reach the store in seq order. The blob, if any, is committed
   * already; its rows (an inbox row and a ref per recipient) are deferred like any other, and
   * #placed deletes the blob if none of them is ever committed.
   */
  #place(
    recipients: string[],
    stats: InboxLedger[],
    message: ChatMessage,
    limits: InboxLimits,
    blob: BlobRef | undefined,
    acksSoon: (user: string) => boolean,
  ): Enqueued {
    const size = messageSize(message);
    const sender = senderOf(message);
    // Who takes it: those whose inbox has room, and in it room for this sender's share.
    let full: string[] | null = null;
    let capped: string[] | null = null;
    const takers: number[] = [];
    for (let i = 0; i < recipients.length; i++) {
      const why = roomFor(stats[i], sender, size, limits);
      if (why === "full") (full ??= []).push(recipients[i]);
      else if (why === "share") (capped ??= []).push(recipients[i]);
      else takers.push(i);
    }
    const cost = blob ? sharedCost(message, blob.size, takers.length) : size;
    // Checked again: other enqueues may have come in while the blob was written.
    const refused = takers.length > 0
      ? this.#overBudget(sender, cost * takers.length, limits)
      : null;
    const placement = new Placement(blob, message, size, cost);
    if (refused !== null || takers.length === 0) {
      // Nothing is queued; a blob written for it goes (#placed).
      this.#placed(placement);
      if (refused) return refusal(refused, placement);
      return {
        queued: [],
        full: full ?? NO_ONE,
        capped: capped ?? NO_ONE,
        refused: null,
        cost: 0,
        durable: placement,
      };
    }
    const perBytes = blob ? BLOB_ROW_BYTES : size;
    // Two rows per recipient when there is a blob.
    const perWrite = Math.max(
      1,
      Math.min(
        Math.floor(MAX_BATCH_MUTATIONS / rowsPerItem(blob)),
        Math.floor(MAX_BATCH_BYTES / perBytes),
      ),
    );
    const shared = blob !== undefined || mayBeShared(message);
    const queued: InboxItem[] = [];
    const batches: RowBatch[] = [];
    let now: RowBatch | null = null;
    let later: RowBatch | null = null;
    for (const i of takers) {
      const user = recipients[i];
      const q = stats[i];
      const seq = this.#ledger.take(q, sender, size, cost);
      const deferred = acksSoon(user);
      const item: InboxItem = { user, seq, message, size, cost };
      if (shared) this.#blobOf.set(item, blob?.id ?? null);
      let rows: Deno.KvMutation[];
      if (deferred) {
        rows = blob ? [UNBUILT_ROW, UNBUILT_ROW] : [UNBUILT_ROW];
      } else {
        const row: Deno.KvMutation = {
          type: "set",
          key: ["inbox", user, seq],
          value: placement.storedItem(),
        };
        rows = blob
          ? [row, { type: "set", key: ["blob_ref", blob.id, user, seq], value: true } as const]
          : [row];
      }
      let b: RowBatch | null = deferred ? later : now;
      if (b === null || b.items.length >= perWrite) {
        b = new RowBatch(placement, deferred, item, rows);
        batches.push(b);
        if (deferred) later = b;
        else now = b;
      } else {
        b.add(item, rows);
      }
      queued.push(item);
    }
    placement.waiting = placement.batches = batches.length;
    placement.queuedCount = queued.length;

    // An immediate row first sends that user's deferred rows on their way, so that a user's
    // rows reach the store in seq order (the pump reads it back in order).
    for (const b of batches) {
      if (b.deferred) continue;
      for (const item of b.items) {
        const deferred = this.#deferred.get(item.user)?.toPromote();
        if (deferred) this.committer.promote(deferred);
      }
    }
    for (const b of batches) {
      const write = this.committer.defer(
        b.mutations,
        perBytes * b.items.length,
        b.deferred ? this.deferMs : 0,
        this.#batchSettled,
        b,
        this.#batchTaken,
      );
      if (!b.deferred) continue;
      // Item k's rows start at row k (k × 2 with a blob: its row, then its ref).
      const per = rowsPerItem(blob);
      for (let k = 0; k < b.items.length; k++) {
        const { user, seq } = b.items[k];
        let rows = this.#deferred.get(user);
        if (rows === undefined) this.#deferred.set(user, rows = new DeferredRows());
        rows.add(seq, write, k * per);
      }
    }
    invariant(batches.length > 0 && queued.length === takers.length, "every taker has a row");
    return {
      queued,
      full: full ?? NO_ONE,
      capped: capped ?? NO_ONE,
      refused: null,
      cost: cost * queued.length,
      durable: placement,
    };
  }

  /**
   * A batch's rows are about to be committed: deferred rows are built, and their message gets
   * bytes of its own. Done here and not at enqueue because most rows for online recipients are
   * cancelled by their ACK first.
   */
  readonly #batchTaken = (write: PendingWrite): void => {
    const b = write.owner as RowBatch;
    const stored = b.placement.storedItem();
    stored.message = storable(stored.message);
    if (!b.deferred) return;
    // Item k's rows start at row k × per; a cancelled one is null.
    const rows = write.mutations;
    const blob = b.placement.blob;
    const per = rowsPerItem(blob);
    invariant(rows.length === b.items.length * per, "a deferred write has its items' rows");
    for (let k = 0; k < b.items.length; k++) {
      const item = b.items[k];
      const at = k * per;
      if (rows[at] === UNBUILT_ROW) {
        rows[at] = { type: "set", key: ["inbox", item.user, item.seq], value: stored };
      }
      if (blob && rows[at + 1] === UNBUILT_ROW) {
        rows[at + 1] = {
          type: "set",
          key: ["blob_ref", blob.id, item.user, item.seq],
          value: true,
        };
      }
    }
  };

  /** A batch of an enqueue's rows is committed, cancelled (all acknowledged) or failed. */
  readonly #batchSettled = (write: PendingWrite, error: Error | null): void => {
    const b = write.owner as RowBatch;
    if (b.deferred) {
      // Too late to cancel now: the rows are committed, failed, or all cancelled already.
      for (const item of b.items) {
        const rows = this.#deferred.get(item.user);
        if (rows === undefined) continue;
        rows.dropLeft();
        if (rows.empty && this.#deferred.size > MAX_IDLE_DEFERRED_USERS) {
          this.#deferred.delete(item.user);
        }
      }
    }
    const p = b.placement;
    if (!error && write.live > 0) p.committed = true;
    if (error) {
      p.failed++;
      p.error ??= error;
      // Those rows are not durable: their counts go. The sender gets an error and retries with
      // the same id, which recipients of the other writes drop as a duplicate.
      const ledger = this.#ledger;
      const sender = senderOf(p.message);
      const per = rowsPerItem(p.blob);
      for (let k = 0; k < b.items.length; k++) {
        const item = b.items[k];
        // A row cancelled by its ACK was not in the commit: its message was counted out then.
        if (write.mutations[k * per] === null) continue;
        const q = ledger.get(item.user);
        invariant(q !== undefined, "a queued item's inbox is counted");
        // Unless its recipient acknowledged it first: then it was counted out already.
        if (q !== undefined) ledger.fail(q, item.seq, sender, item.size, item.cost);
      }
    }
    if (--p.waiting === 0) this.#placed(p);
  };

  /** Every batch has settled: the enqueue is durable, or failed. */
  #placed(p: Placement): void {
    const blob = p.blob;
    if (!blob) {
      if (p.error) p.reject(p.error);
      else p.resolve();
      return;
    }
    const marker: Deno.KvMutation = { type: "delete", key: ["blob_pending", blob.id] };
    if (p.committed) {
      // A stored row names the blob: its in-flight marker can go. If this write is lost, the
      // next start finds the ref and deletes the marker then.
      this.#track(this.committer.write([marker]).catch(() => {}));
      if (p.error) p.reject(p.error);
      else p.resolve();
      return;
    }
    // No stored row names the blob (nobody took the message, every write failed, or every copy
    // was acknowledged before its row was written): it goes, then its marker.
    const dropped = this.#deleteBlob(blob.id).then(() => this.committer.write([marker]));
    if (p.queuedCount > 0 && !p.error) {
      // Every copy was delivered: the sender need not wait for the clean-up.
      this.#track(dropped.catch(() => {}));
      p.resolve();
      return;
    }
    dropped.then(
      () => p.error ? p.reject(p.error) : p.resolve(),
      (e) => p.reject(p.error ?? e),
    );
  }

  /** A step after a commit that the store waits for before it closes (removalsDone). */
  #track(work: Promise<void>): void {
    this.#removing.add(work);
    work.finally(() => this.#removing.delete(work));
  }

  settle(): Promise<void> {
    return this.committer.flush();
  }

  async read(
    user: string,
    after: number,
    limit: number,
    maxBytes = Number.MAX_SAFE_INTEGER,
  ): Promise<InboxItem[]> {
    const out: InboxItem[] = [];
    let bytes = 0;
    const iter = this.kv.list<StoredItem>({
      start: ["inbox", user, after + 1],
      end: ["inbox", user, Number.MAX_SAFE_INTEGER],
    }, { limit });
    for await (const e of iter) {
      const { message, blob, size, cost } = e.value;
      // Always at least one item, so a single large image still gets through.
      if (out.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      let full = message;
      if (blob) {
        const content = await this.#readBlob(blob);
        full = blob.text
          ? { ...message, text: decoder.decode(content) }
          : { ...message, image: content };
      }
      const item: InboxItem = {
        user,
        seq: e.key[2] as number,
        message: full,
        size,
        cost: cost ?? size,
      };
      if (blob || mayBeShared(full)) this.#blobOf.set(item, blob?.id ?? null);
      out.push(item);
    }
    return out;
  }

  async #readBlob(blob: BlobRef): Promise<Uint8Array> {
    const image = new Uint8Array(blob.size);
    let at = 0;
    for await (const e of this.kv.list<Uint8Array>({ prefix: ["blob", blob.id] })) {
      image.set(e.value, at);
      at += e.value.length;
    }
    if (at !== blob.size) throw new Error(`Blob ${blob.id} is incomplete in the store`);
    return image;
  }

  remove(user: string, items: InboxItem[]): Promise<void> {
    const done = this.#remove(user, items);
    // Only a removal with a chunked image has a step after its commit; the store waits for
    // those before it closes. Every other one is done once its commit is, which close() flushes.
    if (!items.some(this.#mayHaveBlob)) return done;
    this.#removing.add(done);
    const forget = () => this.#removing.delete(done);
    done.then(forget, forget);
    return done;
  }

  /** Whether an item's content is, or may be (a copy not handed out here), in a blob. */
  readonly #mayHaveBlob = (item: InboxItem): boolean => {
    const blob = this.#blobOf.get(item);
    return blob !== undefined ? blob !== null : mayBeShared(item.message);
  };

  /**
   * Resolves once no removal of a chunked image is under way. Its last step (deleting an image
   * nobody refers to any more) comes after its first commit; a store closed in between would keep
   * the image's chunks for good.
   */
  async removalsDone(): Promise<void> {
    while (this.#removing.size > 0) await Promise.allSettled([...this.#removing]);
  }

  async #remove(user: string, items: InboxItem[]): Promise<void> {
    if (items.length === 0) return;
    const ledger = this.#ledger;
    const q = ledger.get(user) ?? await this.#queue(user);
    // Each deleted item with its rows, so that a failed commit can give back whole items.
    const deleted: { item: InboxItem; mutations: Deno.KvMutation[]; blob?: string }[] = [];
    let deferred = this.#deferred.get(user);
    for (const item of items) {
      // Not counted out now if it was already: its write failed (so it is not stored), or this
      // copy or another copy of it was acknowledged before (an ACK racing a redelivery).
      if (!ledger.remove(q, item.seq, senderOf(item.message), item.size, item.cost)) continue;
      if (deferred !== undefined && deferred.cancel(item.seq, item.size)) {
        // Acknowledged before its row left: neither the row nor its delete reach KV.
        this.absorbed++;
        continue;
      }
      let blob = this.#blobOf.get(item) ?? undefined;
      if (blob === undefined && !this.#blobOf.has(item) && mayBeShared(item.message)) {
        // A copy of an item this store did not hand out: its row names its blob, if any.
        try {
          blob = await this.#storedBlob(user, item.seq);
        } catch (e) {
          // Nothing of this removal was deleted: what it counted out counts again.
          for (const d of [...deleted.map((d) => d.item), item]) {
            ledger.restore(q, d.seq, senderOf(d.message), d.size, d.cost);
          }
          throw e;
        }
        deferred = this.#deferred.get(user);
      }
      const mutations: Deno.KvMutation[] = [{ type: "delete", key: ["inbox", user, item.seq] }];
      if (blob) {
        // The ref goes, and a marker says the blob may have no ref left: it is checked once the
        // commit is done, and at the next start if a crash comes first (sweep).
        mutations.push(
          { type: "delete", key: ["blob_ref", blob, user, item.seq] },
          { type: "set", key: ["blob_pending", blob, user, item.seq], value: new Date() },
        );
      }
      deleted.push({ item, mutations, blob });
    }
    const blobs = new Set<string>();
    for (let i = 0; i < deleted.length;) {
      const chunk: Deno.KvMutation[] = [];
      let n = 0;
      while (
        i + n < deleted.length &&
        chunk.length + deleted[i + n].mutations.length <= MAX_BATCH_MUTATIONS
      ) {
        chunk.push(...deleted[i + n].mutations);
        n++;
      }
      try {
        await this.committer.write(chunk);
      } catch (e) {
        // Still stored: they count again, and an acknowledgement of a redelivered copy will
        // remove them then (but those whose write failed were never stored).
        for (let k = i; k < deleted.length; k++) {
          const { item } = deleted[k];
          ledger.restore(q, item.seq, senderOf(item.message), item.size, item.cost);
        }
        throw e;
      }
      for (let k = i; k < i + n; k++) {
        const blob = deleted[k].blob;
        if (blob) blobs.add(blob);
        if (q.unwritten !== null) ledger.deleted(q, deleted[k].item.seq);
      }
      i += n;
    }
    for (const id of blobs) {
      await this.#dropBlobIfUnused(id);
      // This removal's markers only: another one under way for the same blob keeps its own.
      const done: Deno.KvMutation[] = deleted.filter((d) => d.blob === id).map(({ item }) => ({
        type: "delete",
        key: ["blob_pending", id, user, item.seq],
      }));
      for (let k = 0; k < done.length; k += MAX_BATCH_MUTATIONS) {
        await this.committer.write(done.slice(k, k + MAX_BATCH_MUTATIONS));
      }
    }
  }

  /** The blob a stored row names; rows still in the committer are committed first. */
  async #storedBlob(user: string, seq: number): Promise<string | undefined> {
    await this.committer.flush();
    return (await this.kv.get<StoredItem>(["inbox", user, seq])).value?.blob?.id;
  }

  async #dropBlobIfUnused(id: string): Promise<void> {
    for await (const _ of this.kv.list({ prefix: ["blob_ref", id] }, { limit: 1 })) return;
    await this.#deleteBlob(id);
  }

  /**
   * At start: blobs whose write was cut off by a crash before any inbox entry named them, or
   * whose last ref went just before a crash, are deleted. Runs before the server accepts
   * connections.
   */
  async sweep(): Promise<number> {
    let swept = 0;
    for await (const e of this.kv.list({ prefix: ["blob_pending"] })) {
      const id = e.key[1] as string;
      let referenced = false;
      for await (const _ of this.kv.list({ prefix: ["blob_ref", id] }, { limit: 1 })) {
        referenced = true;
      }
      if (!referenced) {
        await this.#deleteBlob(id);
        swept++;
      }
      await this.committer.write([{ type: "delete", key: e.key }]);
    }
    return swept;
  }

  async #deleteBlob(id: string): Promise<void> {
    const mutations: Deno.KvMutation[] = [];
    for await (const e of this.kv.list({ prefix: ["blob", id] })) {
      mutations.push({ type: "delete", key: e.key });
    }
    for (let i = 0; i < mutations.length; i += MAX_BATCH_MUTATIONS) {
      await this.committer.write(mutations.slice(i, i + MAX_BATCH_MUTATIONS));
    }
  }

  async stats(user: string): Promise<{ count: number; bytes: number }> {
    const q = await this.#queue(user);
    return { count: q.count, bytes: q.bytes };
  }

  async queued(): Promise<{ count: number; bytes: number }> {
    let count = 0;
    let bytes = 0;
    for (const r of await Promise.allSettled(this.#stats.values())) {
      if (r.status === "rejected") continue; // an inbox the store failed to count
      count += r.value.count;
      bytes += r.value.bytes;
    }
    return { count, bytes };
  }

  async clear(user: string): Promise<void> {
    while (true) {
      const items = await this.read(user, 0, 200);
      if (items.length === 0) return;
      await this.remove(user, items);
    }
  }
}

/** What each of `rows` rows stands for when they share a blob of `bytes`: its part, rounded up. */
function sharedCost(m: ChatMessage, bytes: number, rows: number): number {
  return ITEM_OVERHEAD + (m.name?.length ?? 0) + Math.ceil(bytes / Math.max(1, rows));
}

/** An enqueue refused by a budget: stored for nobody. */
function refusal(refused: QueueRefusal, durable = resolved()): Enqueued {
  return { queued: [], full: NO_ONE, capped: NO_ONE, refused, cost: 0, durable };
}

function resolved(): Completion {
  const c = new Completion();
  c.resolve();
  return c;
}

/** Tells `placed` the items an enqueue queued, as soon as their seqs are taken. */
function tell(
  enqueued: Enqueued,
  placed: ((queued: readonly InboxItem[]) => void) | undefined,
): Enqueued {
  if (placed !== undefined && enqueued.queued.length > 0) placed(enqueued.queued);
  return enqueued;
}

/** Rows per queued item: its inbox row, and its ref when the content is in a blob. */
function rowsPerItem(blob: BlobRef | undefined): 1 | 2 {
  return blob ? 2 : 1;
}

/** Drops an item's rows from a write that has not left yet; false if it has. */
function cancelRows(write: PendingWrite, at: number, size: number): boolean {
  // A settled write lets go of its owner, and cancels nothing.
  const batch = write.owner as RowBatch | null;
  if (batch === null) return false;
  const blob = batch.placement.blob !== undefined;
  if (!write.cancel(at, blob ? BLOB_ROW_BYTES : size)) return false;
  // Its ref goes with it: both leave in the same commit or neither does.
  if (blob) invariant(write.cancel(at + 1), "a row's ref is cancelled with it");
  return true;
}
