/**
 * Read-modify-write of KV keys that several nodes update at once: each change is a pure function
 * of the key's value, applied with compare-and-set (kv_records.ts `writeBytesIf`: not
 * `kv.update`, which nats-server 2.9.10 does not serialise across a cluster), and applied again
 * to the fresh value when another node wrote first. Changes to one key from this process
 * are combined: those that arrive while a write is out go together in the next one, in arrival
 * order, so that 64 enqueues to one inbox make a few writes rather than 64 conflicting ones.
 * The last value and revision written or read are kept, which saves the read before a write;
 * they may be stale (another node wrote since), which the compare-and-set finds out.
 */

import type { KV } from "../../cluster/nats.ts";
import { invariant } from "../../invariant/invariant.ts";
import { type RecordBucket, writeBytesIf } from "./kv_records.ts";
/** Changes combined into one write at most. */
const MAX_BATCH = 512;
/** Compare-and-set rounds before a change gives up (a key fought over this hard is a bug). */
const MAX_ROUNDS = 1000;

export interface Codec<T> {
  encode(v: T): Uint8Array;
  decode(bytes: Uint8Array): T;
  /** The value of a key that has none. */
  empty(): T;
}

/**
 * One change: the key's next value (the same object: no change) and what to tell the caller.
 * It must not mutate `v` and must do nothing else: it may run again on a fresher value. It
 * states what must hold of the value with `valueInvariant`, not `invariant` (see there).
 */
export type Change<T, R> = (v: T) => { next: T; result: R };

/** A change met a cached value that cannot be the key's (see valueInvariant). */
class StaleValue extends Error {
  override name = "StaleValue";
}

/** Whether the changes running now were given a cached value rather than one just read. */
let applyingCached = false;

/**
 * An invariant of a key's value, stated inside a Change. Of a value just read, it is an
 * invariant like any other. A cached value may be stale, though (another node wrote since):
 * a count this node last saw at 0, which another node has raised, is not broken when this node
 * takes one off; so a change given a cached value that breaks it is run again on a fresh read.
 */
export function valueInvariant(ok: boolean, what: string): void {
  if (ok) return;
  if (applyingCached) throw new StaleValue(what);
  invariant(false, what);
}

interface Known<T> {
  value: T;
  /** 0: no entry; else the entry's revision (a deleted key's marker too). */
  revision: number;
}

interface Pending<T> {
  // deno-lint-ignore no-explicit-any
  change: Change<T, any>;
  // deno-lint-ignore no-explicit-any
  resolve(r: any): void;
  reject(e: Error): void;
}

export class CasBucket<T> {
  readonly #known = new Map<string, Known<T>>();
  readonly #queues = new Map<string, Pending<T>[]>();
  /** Writes this process makes, with their revisions (the stored-bytes mirror follows them). */
  onWritten: ((key: string, value: T, revision: number) => void) | null = null;
  /** Conflicts met (benchmarks, tests). */
  conflicts = 0;

  readonly kv: KV;

  constructor(private readonly bucket: RecordBucket, private readonly codec: Codec<T>) {
    this.kv = bucket.kv;
  }

  /** The key's value as the stream leader has it now. */
  async read(key: string): Promise<T> {
    return (await this.#fetch(key)).value;
  }

  /** The last value this process read or wrote for `key`, if any (stale if another node wrote). */
  peek(key: string): T | undefined {
    return this.#known.get(key)?.value;
  }

  /** The last value this process read or wrote for each key (stale where another node wrote). */
  cached(): IterableIterator<[string, Known<T>]> {
    return this.#known.entries();
  }

  /**
   * Drops what is kept of a key gone for good (a blob's count once the blob went): without it,
   * the cache would keep an entry per blob ever stored, for the life of the process.
   */
  forget(key: string): void {
    if (!this.#queues.has(key)) this.#known.delete(key);
  }

  /** Applies `change` to the key's value, durably; resolves with the change's result. */
  apply<R>(key: string, change: Change<T, R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let queue = this.#queues.get(key);
      if (queue) {
        queue.push({ change, resolve, reject });
        return;
      }
      queue = [{ change, resolve, reject }];
      this.#queues.set(key, queue);
      void this.#drain(key, queue);
    });
  }

  async #fetch(key: string): Promise<Known<T>> {
    const e = await this.kv.get(key);
    const known: Known<T> = !e ? { value: this.codec.empty(), revision: 0 } : {
      value: e.operation === "PUT" ? this.codec.decode(e.value) : this.codec.empty(),
      revision: e.revision,
    };
    const had = this.#known.get(key);
    if (!had || had.revision <= known.revision) this.#known.set(key, known);
    return known;
  }

  async #drain(key: string, queue: Pending<T>[]): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        const results = await this.#commit(key, batch);
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (e) {
        // Not known to be written: the next change starts from a fresh read.
        this.#known.delete(key);
        for (const p of batch) p.reject(e as Error);
      }
    }
    this.#queues.delete(key);
  }

  async #commit(key: string, batch: Pending<T>[]): Promise<unknown[]> {
    let known = this.#known.get(key);
    let fresh = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (!known) {
        known = await this.#fetch(key);
        fresh = true;
      }
      let value = known.value;
      let results: unknown[];
      applyingCached = !fresh;
      try {
        results = batch.map((p) => {
          const { next, result } = p.change(value);
          value = next;
          return result;
        });
      } catch (e) {
        if (!(e instanceof StaleValue)) throw e;
        known = undefined;
        continue;
      } finally {
        applyingCached = false;
      }
      if (value === known.value) {
        // Nothing to write. An answer read off a cached value (a refusal: the inbox is full)
        // could be stale: it is given only once the value is read afresh.
        if (fresh) return results;
        known = undefined;
        continue;
      }
      const bytes = this.codec.encode(value);
      const revision = await writeBytesIf(this.bucket, key, bytes, known.revision);
      if (revision !== null) {
        this.#known.set(key, { value, revision });
        this.onWritten?.(key, value, revision);
        return results;
      }
      // Another node wrote first: again, on its value.
      this.conflicts++;
      known = undefined;
    }
    throw new Error(`KV key ${key} kept changing under ${MAX_ROUNDS} compare-and-set rounds`);
  }
}
