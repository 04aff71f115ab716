/**
 * Group commit for Deno KV: writes gather while the previous commit runs and go out together
 * in one atomic commit. A commit costs ~200–250 µs however many rows it holds, so batching is
 * what lets durable delivery keep up with chat traffic.
 *
 * A write may also be deferred for a short while and its rows cancelled before they leave.
 * Inbox rows for online recipients use this: when the client acknowledges a message before its
 * row was committed, the row and its delete cancel out and KV never sees either.
 */

import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { invariant } from "../invariant/invariant.ts";

/** KV's own caps are 1000 mutations and 800 KiB per atomic commit; stay under both. */
export const MAX_BATCH_MUTATIONS = 900;
export const MAX_BATCH_BYTES = 700 * 1024;

/**
 * Deferred writes that fall due within this long of the first one are released together: one
 * timer per grain, not one per write (chat traffic defers a write per message, and a timer
 * costs more than the rest of a cancelled write).
 */
export const DEFER_GRAIN_MS = 10;

/** Told once how a write ended: `error` null when its rows are committed (or all cancelled). */
export type WriteSettled = (write: PendingWrite, error: Error | null) => void;

/** A queued write. Its rows can be cancelled one by one until it is taken into a commit. */
export class PendingWrite {
  /** Set once the write is in a commit (or settled): cancelling is then too late. */
  taken = false;
  #live: number;

  constructor(
    /** Emptied once settled. */
    readonly mutations: (Deno.KvMutation | null)[],
    public bytes: number,
    /** Not committed before this time (ms, on the committer's clock); 0 for at once. */
    readonly due: number,
    /** One function for many writes: the writer finds its own state through `owner`. */
    readonly onSettled: WriteSettled,
    /** Null once settled. */
    public owner: unknown = null,
    /** Told once, just before the write's rows go into a commit (to make them storable). */
    readonly onTaken: ((write: PendingWrite) => void) | null = null,
  ) {
    this.#live = mutations.length;
  }

  /** Rows still to commit. */
  get live(): number {
    return this.#live;
  }

  /**
   * Drops row `index` if the write has not left yet; true if it was dropped. A write whose
   * rows are all dropped is settled at once: there is nothing left to make durable.
   */
  cancel(index: number, bytes = 0): boolean {
    if (this.taken || this.mutations[index] === null) return false;
    invariant(bytes >= 0 && bytes <= this.bytes, "a cancelled row's bytes were counted in");
    this.mutations[index] = null;
    this.bytes -= bytes;
    if (--this.#live === 0) {
      this.taken = true;
      this.settle(null);
    }
    return true;
  }

  /** Tells the writer; a throwing callback must not stop the committer telling the others. */
  settle(error: Error | null): void {
    try {
      this.onSettled(this, error);
    } catch (e) {
      console.error("A write's completion callback failed:", e);
    }
    // A write cancelled by acknowledgements stays in the deferred list until it is due; let go
    // of its rows and its owner's messages now, so that they die young and are not promoted.
    this.mutations.length = 0;
    this.owner = null;
  }
}

interface FlushWaiter {
  upTo: number;
  resolve: () => void;
}

export class GroupCommitter {
  readonly #kv: Deno.Kv;
  readonly #clock: Clock;
  #queue: PendingWrite[] = [];
  /** Deferred writes, in order of their due time (one delay for all, so FIFO). */
  #deferred: PendingWrite[] = [];
  #timer: TimerHandle | null = null;
  #running: Promise<void> | null = null;
  #closed = false;
  /** Writes ever put in the commit queue, and those settled since (committed, failed, dropped). */
  #queued = 0;
  #settled = 0;
  /** flush() calls waiting for the writes queued before them. */
  #waiting: FlushWaiter[] = [];
  /** Commits made and rows written, for stats and benchmarks. */
  commits = 0;
  rows = 0;
  /** Told how long each successful commit took, in seconds (metrics). */
  onCommit: (seconds: number) => void = () => {};

  constructor(kv: Deno.Kv, clock: Clock = systemClock) {
    this.#kv = kv;
    this.#clock = clock;
  }

  /**
   * Queues mutations and resolves once they are durable. One call's mutations always commit
   * together; a call larger than one commit allows is refused (callers split their work).
   */
  write(mutations: Deno.KvMutation[], bytes = 0): Promise<void> {
    return new Promise((resolve, reject) =>
      this.#add(mutations, bytes, 0, (_, error) => error ? reject(error) : resolve(), null)
    );
  }

  /**
   * Like `write`, but the rows wait `delayMs` before they are committed and can be cancelled
   * meanwhile through the returned handle. `onSettled` is called once every row is committed
   * or cancelled, or with the error (never before this call returns). `onTaken` is told just
   * before the rows go into a commit: rows cancelled before then need no work at all.
   */
  defer(
    mutations: Deno.KvMutation[],
    bytes: number,
    delayMs: number,
    onSettled: WriteSettled,
    owner: unknown,
    onTaken: ((write: PendingWrite) => void) | null = null,
  ): PendingWrite {
    return this.#add(
      mutations,
      bytes,
      delayMs > 0 ? this.#clock.now() + delayMs : 0,
      onSettled,
      owner,
      onTaken,
    );
  }

  #add(
    mutations: Deno.KvMutation[],
    bytes: number,
    due: number,
    onSettled: WriteSettled,
    owner: unknown,
    onTaken: ((write: PendingWrite) => void) | null = null,
  ): PendingWrite {
    const write = new PendingWrite(mutations, bytes, due, onSettled, owner, onTaken);
    const refused = this.#closed
      ? new Error("The store is closed")
      : mutations.length > MAX_BATCH_MUTATIONS || bytes > MAX_BATCH_BYTES
      ? new RangeError(
        `A write of ${mutations.length} mutations and ${bytes} bytes exceeds one commit`,
      )
      : null;
    if (refused || mutations.length === 0) {
      // Settled, but not before the caller has the handle.
      write.taken = true;
      queueMicrotask(() => write.settle(refused));
      return write;
    }
    if (due === 0) {
      this.#enqueue(write);
      // A microtask lets every write made in this tick join the first commit.
      this.#running ??= Promise.resolve().then(() => this.#drain());
    } else {
      this.#deferred.push(write);
      this.#arm();
    }
    return write;
  }

  #enqueue(write: PendingWrite): void {
    this.#queue.push(write);
    this.#queued++;
  }

  /** Moves deferred writes that are due (all of them when `all`) to the commit queue. */
  #release(all: boolean): void {
    const now = this.#clock.now();
    let n = 0;
    while (n < this.#deferred.length && (all || this.#deferred[n].due <= now)) n++;
    this.#releaseFirst(n);
  }

  #releaseFirst(n: number): void {
    if (n === 0) return;
    for (const w of this.#deferred.splice(0, n)) if (!w.taken) this.#enqueue(w);
  }

  /**
   * Sends `write` (a deferred one) and every deferred write before it to be committed now, in
   * order, so that a write queued after this call cannot commit before them.
   */
  promote(write: PendingWrite): void {
    if (write.taken) return;
    const at = this.#deferred.indexOf(write);
    if (at < 0) return;
    this.#releaseFirst(at + 1);
    this.#running ??= Promise.resolve().then(() => this.#drain());
  }

  #wake(): void {
    this.#timer = null;
    this.#release(false);
    if (this.#queue.length > 0) this.#running ??= Promise.resolve().then(() => this.#drain());
    else this.#arm();
  }

  #arm(): void {
    if (this.#timer !== null) return;
    // Writes whose rows were all cancelled are settled already: nothing to wake for.
    let dead = 0;
    while (dead < this.#deferred.length && this.#deferred[dead].taken) dead++;
    if (dead > 0) this.#deferred.splice(0, dead);
    if (this.#deferred.length === 0) return;
    this.#timer = this.#clock.setTimer(
      () => this.#wake(),
      Math.max(0, this.#deferred[0].due - this.#clock.now()) + DEFER_GRAIN_MS,
    );
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch: PendingWrite[] = [];
        const op = this.#kv.atomic();
        let count = 0;
        let bytes = 0;
        // Taken by index and cut once: shift() per write is quadratic on a long queue.
        const queue = this.#queue;
        let used = 0;
        for (; used < queue.length; used++) {
          const next = queue[used];
          if (next.taken) {
            this.#settled++; // every row was cancelled
            continue;
          }
          if (
            batch.length > 0 &&
            (count + next.live > MAX_BATCH_MUTATIONS || bytes + next.bytes > MAX_BATCH_BYTES)
          ) break;
          next.taken = true;
          if (next.onTaken && !this.#prepare(next)) continue;
          for (const m of next.mutations) if (m !== null) op.mutate(m);
          count += next.live;
          bytes += next.bytes;
          batch.push(next);
        }
        this.#queue = used === queue.length ? [] : queue.slice(used);
        if (batch.length === 0) {
          this.#wakeFlushes();
          break;
        }
        try {
          const started = performance.now();
          const result = await op.commit();
          if (!result.ok) throw new Error("KV commit failed");
          this.onCommit((performance.now() - started) / 1000);
          this.commits++;
          this.rows += count;
          for (const w of batch) w.settle(null);
        } catch (e) {
          const error = e instanceof Error ? e : new Error(String(e));
          for (const w of batch) w.settle(error);
        }
        this.#settled += batch.length;
        this.#wakeFlushes();
      }
    } finally {
      this.#running = null;
      this.#arm();
    }
  }

  /** Tells a write it is being committed; one that throws fails alone, with that error. */
  #prepare(write: PendingWrite): boolean {
    try {
      write.onTaken!(write);
      return true;
    } catch (e) {
      write.settle(e instanceof Error ? e : new Error(String(e)));
      this.#settled++;
      return false;
    }
  }

  #wakeFlushes(): void {
    if (this.#waiting.length === 0) return;
    const still: FlushWaiter[] = [];
    for (const w of this.#waiting) w.upTo <= this.#settled ? w.resolve() : still.push(w);
    this.#waiting = still;
  }

  /**
   * Resolves once everything queued so far is committed (or failed), deferred writes
   * included: they are committed now rather than at their time. Writes queued later are not
   * waited for, so steady traffic cannot hold a flush up.
   */
  flush(): Promise<void> {
    this.#release(true);
    const upTo = this.#queued;
    if (this.#settled >= upTo) return Promise.resolve();
    this.#running ??= Promise.resolve().then(() => this.#drain());
    return new Promise((resolve) => this.#waiting.push({ upTo, resolve }));
  }

  /** Refuses further writes after committing what is queued. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    while (this.#running) await this.#running;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}
