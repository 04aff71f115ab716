/**
 * The inbox ledger: what each inbox holds and what the store's queued messages take, counted in
 * memory so that no counter row is rewritten with every message. Pure bookkeeping: no KV, no
 * promises; the KV inbox store calls it as its rows are taken, written, acknowledged or lost.
 *
 * Per inbox: `next` (the seq the next message gets), `count` and `bytes` (as counted against the
 * queue limits), the same per sender (each sender's share), and `removedThrough`: clients
 * acknowledge cumulatively and the pump delivers in seq order, so what is counted out by an
 * acknowledgement is a prefix. Seqs above it that are counted out already (a write that failed)
 * are listed in `out`; seqs below it still counted in (their delete failed, so they are still
 * stored and a redelivered copy's acknowledgement must remove them) in `stranded`. Seqs
 * acknowledged while their write was in a commit that then failed are in `unwritten` until their
 * delete ends: they were never stored, so a failed delete must not count them in again. Store-wide: the bytes the
 * queued messages take in the store (a blob shared by several rows is counted once, split
 * between them), per sender and in total.
 *
 * Invariants, checked after each operation (the sums, which cost a walk, by `check()`):
 * - every count and byte figure is ≥ 0, and a count is 0 exactly when its bytes are;
 * - a sender's share fits in its inbox (share count ≤ count, share bytes ≤ bytes), and a
 *   sender's store bytes fit in the total; the shares of an inbox sum to its totals, and the
 *   senders' store bytes to the store's total (check);
 * - removedThrough < next, every seq in `out` lies between them, every seq in `stranded` at or
 *   below removedThrough, and every seq in `unwritten` is counted out;
 * - seqs are handed out rising: `take` returns `next` and moves it on; rows loaded from the
 *   store come in seq order.
 */

import { invariant } from "../invariant/invariant.ts";

/** One sender's messages in one inbox. */
export interface SenderShare {
  count: number;
  bytes: number;
}

/** One inbox's counts. Read freely; changed only through the Ledger. */
export class InboxLedger {
  next = 1;
  count = 0;
  bytes = 0;
  removedThrough = 0;
  /** Each sender's share (by identity); a sender with nothing queued has no entry. */
  readonly bySender = new Map<string, SenderShare>();
  /** Seqs above removedThrough that are counted out already; null when there are none. */
  out: Set<number> | null = null;
  /** Seqs at or below removedThrough still counted in: their delete failed. */
  stranded: Set<number> | null = null;
  /** Seqs counted out by an acknowledgement whose row write then failed, until their delete ends. */
  unwritten: Set<number> | null = null;

  constructor(readonly user: string) {}

  /** Whether the message with `seq` is counted out of this inbox (or was never counted in). */
  isOut(seq: number): boolean {
    return seq <= this.removedThrough
      ? this.stranded === null || !this.stranded.has(seq)
      : this.out !== null && this.out.has(seq);
  }
}

export class Ledger {
  readonly #inboxes = new Map<string, InboxLedger>();
  readonly #senderBytes = new Map<string, number>();
  #total = 0;

  /** The inbox's counts, if they are known. */
  get(user: string): InboxLedger | undefined {
    return this.#inboxes.get(user);
  }

  /** Starts counting an inbox, empty; rows found in the store are then counted in by `load`. */
  open(user: string): InboxLedger {
    invariant(!this.#inboxes.has(user), "an inbox is opened once");
    const inbox = new InboxLedger(user);
    this.#inboxes.set(user, inbox);
    return inbox;
  }

  inboxes(): IterableIterator<InboxLedger> {
    return this.#inboxes.values();
  }

  /** Counts in a row found in the store, read in seq order; the next seq comes after it. */
  load(inbox: InboxLedger, seq: number, sender: string, size: number, cost: number): void {
    invariant(seq >= inbox.next, "rows are loaded in seq order");
    invariant(inbox.out === null && inbox.removedThrough === 0, "rows are loaded before use");
    this.#tally(inbox, sender, size, cost, 1);
    inbox.next = seq + 1;
  }

  /** Takes the next seq for a new message and counts it in. */
  take(inbox: InboxLedger, sender: string, size: number, cost: number): number {
    const seq = inbox.next++;
    this.#tally(inbox, sender, size, cost, 1);
    invariant(seq > inbox.removedThrough, "a new seq is above what was removed");
    return seq;
  }

  /**
   * The message's write failed, so it is not stored: it is counted out, unless it was already
   * (its recipient acknowledged it before the write ended). True if it was counted out now.
   */
  fail(inbox: InboxLedger, seq: number, sender: string, size: number, cost: number): boolean {
    invariant(seq < inbox.next, "only a seq handed out can fail");
    if (inbox.isOut(seq)) {
      // Acknowledged while its write was in the commit: the delete that follows may fail too.
      (inbox.unwritten ??= new Set()).add(seq);
      return false;
    }
    if (seq <= inbox.removedThrough) dropFrom(inbox, "stranded", seq);
    else (inbox.out ??= new Set()).add(seq);
    this.#tally(inbox, sender, size, cost, -1);
    return true;
  }

  /**
   * The recipient acknowledged every seq up to this one: the message is counted out unless it
   * was already (its write failed, or another copy of it was acknowledged). True if it was
   * counted out now: then its rows must go from the store.
   */
  remove(inbox: InboxLedger, seq: number, sender: string, size: number, cost: number): boolean {
    invariant(seq < inbox.next, "only a seq handed out is removed");
    const counted = !inbox.isOut(seq);
    if (counted && seq <= inbox.removedThrough) dropFrom(inbox, "stranded", seq);
    if (seq > inbox.removedThrough) {
      inbox.removedThrough = seq;
      if (inbox.out !== null) pruneOut(inbox);
    }
    if (counted) this.#tally(inbox, sender, size, cost, -1);
    return counted;
  }

  /**
   * A message counted out by `remove` is still stored after all (deleting its rows failed): it
   * counts again, and the acknowledgement of a redelivered copy removes it then, even below
   * removedThrough. One whose write had failed was never stored: it stays out.
   */
  restore(inbox: InboxLedger, seq: number, sender: string, size: number, cost: number): void {
    invariant(inbox.isOut(seq), "only a message counted out is restored");
    if (inbox.unwritten !== null && inbox.unwritten.has(seq)) {
      dropFrom(inbox, "unwritten", seq);
      return;
    }
    if (seq <= inbox.removedThrough) (inbox.stranded ??= new Set()).add(seq);
    else dropFrom(inbox, "out", seq);
    this.#tally(inbox, sender, size, cost, 1);
  }

  /** The delete of an acknowledged message committed: nothing can count it in again. */
  deleted(inbox: InboxLedger, seq: number): void {
    if (inbox.unwritten !== null) dropFrom(inbox, "unwritten", seq);
  }

  /** Bytes the queued messages take in the store: all of them, or one sender's. */
  storedBytes(sender?: string): number {
    return sender === undefined ? this.#total : this.#senderBytes.get(sender) ?? 0;
  }

  /**
   * Counts one message in (+1) or out (-1) of its inbox, its sender's share of it, the sender's
   * bytes in the store and the store's. Every check is O(1): this runs for every message.
   */
  #tally(inbox: InboxLedger, sender: string, size: number, cost: number, sign: 1 | -1): void {
    invariant(size > 0 && cost > 0, "a message has a size and a cost");
    inbox.count += sign;
    inbox.bytes += sign * size;
    let share = inbox.bySender.get(sender);
    if (share === undefined) inbox.bySender.set(sender, share = { count: 0, bytes: 0 });
    share.count += sign;
    share.bytes += sign * size;
    const sent = (this.#senderBytes.get(sender) ?? 0) + sign * cost;
    this.#total += sign * cost;
    invariant(inbox.count >= 0 && inbox.bytes >= 0, "an inbox's counts are not negative");
    invariant((inbox.count === 0) === (inbox.bytes === 0), "an empty inbox has no bytes");
    invariant(share.count >= 0 && share.bytes >= 0, "a sender's share is not negative");
    invariant((share.count === 0) === (share.bytes === 0), "an empty share has no bytes");
    invariant(
      share.count <= inbox.count && share.bytes <= inbox.bytes,
      "a sender's share fits in its inbox",
    );
    invariant(sent >= 0, "a sender's store bytes are not negative");
    invariant(sent <= this.#total, "a sender's store bytes fit in the total");
    if (share.count === 0) inbox.bySender.delete(sender);
    if (sent === 0) this.#senderBytes.delete(sender);
    else this.#senderBytes.set(sender, sent);
  }

  /**
   * Every invariant, the sums included: a walk over every inbox and sender, for tests (and
   * for anyone who suspects the counts).
   */
  check(): void {
    let total = 0;
    for (const bytes of this.#senderBytes.values()) {
      invariant(bytes > 0, "a sender with store bytes has some");
      total += bytes;
    }
    invariant(total === this.#total, "the senders' store bytes sum to the total");
    for (const inbox of this.#inboxes.values()) {
      let count = 0;
      let bytes = 0;
      for (const share of inbox.bySender.values()) {
        invariant(share.count > 0 && share.bytes > 0, "a listed share is not empty");
        count += share.count;
        bytes += share.bytes;
      }
      invariant(count === inbox.count && bytes === inbox.bytes, "the shares sum to the inbox");
      invariant(inbox.removedThrough < inbox.next, "removedThrough is below the next seq");
      for (const seq of inbox.stranded ?? []) {
        invariant(seq <= inbox.removedThrough, "a stranded seq is at or below removedThrough");
      }
      for (const seq of inbox.unwritten ?? []) {
        invariant(seq < inbox.next && inbox.isOut(seq), "an unwritten seq is counted out");
      }
      if (inbox.out !== null) {
        invariant(inbox.out.size > 0, "an empty out list is null");
        for (const seq of inbox.out) {
          invariant(
            seq > inbox.removedThrough && seq < inbox.next,
            "a seq counted out above removedThrough lies below the next seq",
          );
        }
      }
    }
  }
}

/** Drops from `out` the seqs that removedThrough has reached. */
function pruneOut(inbox: InboxLedger): void {
  const out = inbox.out!;
  for (const seq of out) if (seq <= inbox.removedThrough) out.delete(seq);
  if (out.size === 0) inbox.out = null;
}

/** Removes `seq` from one of the inbox's seq sets; an emptied set becomes null. */
function dropFrom(inbox: InboxLedger, set: "out" | "stranded" | "unwritten", seq: number): void {
  const seqs = inbox[set];
  if (seqs === null) return;
  seqs.delete(seq);
  if (seqs.size === 0) inbox[set] = null;
}
