/**
 * Group commit for Deno KV: writes gather while the previous commit runs and go out together
 * in one atomic commit. A commit costs ~200–250 µs however many rows it holds, so batching is
 * what lets durable delivery keep up with chat traffic.
 */

/** KV's own caps are 1000 mutations and 800 KiB per atomic commit; stay under both. */
export const MAX_BATCH_MUTATIONS = 900;
export const MAX_BATCH_BYTES = 700 * 1024;

interface PendingWrite {
  mutations: Deno.KvMutation[];
  bytes: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class GroupCommitter {
  readonly #kv: Deno.Kv;
  #queue: PendingWrite[] = [];
  #running: Promise<void> | null = null;
  #closed = false;
  /** Commits made and rows written, for stats and benchmarks. */
  commits = 0;
  rows = 0;
  /** Told how long each successful commit took, in seconds (metrics). */
  onCommit: (seconds: number) => void = () => {};

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /**
   * Queues mutations and resolves once they are durable. One call's mutations always commit
   * together; a call larger than one commit allows is refused (callers split their work).
   */
  write(mutations: Deno.KvMutation[], bytes = 0): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("The store is closed"));
    if (mutations.length === 0) return Promise.resolve();
    if (mutations.length > MAX_BATCH_MUTATIONS || bytes > MAX_BATCH_BYTES) {
      return Promise.reject(
        new RangeError(
          `A write of ${mutations.length} mutations and ${bytes} bytes exceeds one commit`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ mutations, bytes, resolve, reject });
      // A microtask lets every write made in this tick join the first commit.
      this.#running ??= Promise.resolve().then(() => this.#drain());
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch: PendingWrite[] = [];
        const op = this.#kv.atomic();
        let count = 0;
        let bytes = 0;
        while (this.#queue.length > 0) {
          const next = this.#queue[0];
          if (
            batch.length > 0 &&
            (count + next.mutations.length > MAX_BATCH_MUTATIONS ||
              bytes + next.bytes > MAX_BATCH_BYTES)
          ) break;
          op.mutate(...next.mutations);
          count += next.mutations.length;
          bytes += next.bytes;
          batch.push(this.#queue.shift()!);
        }
        try {
          const started = performance.now();
          const result = await op.commit();
          if (!result.ok) throw new Error("KV commit failed");
          this.onCommit((performance.now() - started) / 1000);
          this.commits++;
          this.rows += count;
          for (const w of batch) w.resolve();
        } catch (e) {
          const error = e instanceof Error ? e : new Error(String(e));
          for (const w of batch) w.reject(error);
        }
      }
    } finally {
      this.#running = null;
    }
  }

  /** Resolves once everything queued so far is committed (or failed). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Refuses further writes after committing what is queued. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }
}
