/**
 * Bytes in the store per sender (queued copies, a shared blob once), for the store's budget and
 * each sender's: the KV bucket `<prefix>_stored`, one key per sender, changed by compare-and-set
 * (a sender's budget holds across nodes). `storedBytes()` is synchronous, so every node keeps a
 * mirror of the bucket, kept current by a watch (other nodes' changes) and by its own writes
 * (seen at once, before the watch brings them back). Each value wins by its revision, so a late
 * watch entry never undoes a newer write.
 */

import type { KV, QueuedIterator } from "../../cluster/nats.ts";
import { userToken } from "../../cluster/names.ts";
import { CasBucket, type Codec, valueInvariant } from "./cas.ts";
import type { NatsStoreContext } from "./context.ts";
import { openRecords } from "./kv_records.ts";

const bytesCodec: Codec<number> = {
  encode: (n) => new TextEncoder().encode(String(n)),
  decode: (b) => Number(new TextDecoder().decode(b)),
  empty: () => 0,
};

interface Mirrored {
  bytes: number;
  revision: number;
}

export class StoredBytes {
  readonly #mirror = new Map<string, Mirrored>();
  #total = 0;
  /** The highest revision mirrored, and who waits for one. */
  #revision = 0;
  #waiting: { revision: number; resolve: () => void }[] = [];
  #watch: QueuedIterator<unknown> | null = null;

  private constructor(private readonly cas: CasBucket<number>) {
    cas.onWritten = (key, bytes, revision) => this.#set(key, bytes, revision);
  }

  static async open(ctx: NatsStoreContext): Promise<StoredBytes> {
    const bucket = await openRecords(ctx, "stored");
    const s = new StoredBytes(new CasBucket(bucket, bytesCodec));
    await s.#start(bucket.kv);
    return s;
  }

  /** Mirrors the bucket; resolves once what it held at the start is mirrored. */
  async #start(kv: KV): Promise<void> {
    const last = (await kv.status()).streamInfo.state.last_seq;
    const watch = await kv.watch();
    this.#watch = watch;
    void (async () => {
      for await (const e of watch) {
        this.#set(e.key, e.operation === "PUT" ? bytesCodec.decode(e.value) : 0, e.revision);
      }
    })().catch(() => {});
    // The message at `last` is the last of its key, so the watch brings it (or a later one).
    await this.caughtUp(last);
  }

  #set(key: string, bytes: number, revision: number): void {
    const had = this.#mirror.get(key);
    if (had && had.revision >= revision) return;
    this.#total += bytes - (had?.bytes ?? 0);
    this.#mirror.set(key, { bytes, revision });
    if (revision > this.#revision) {
      this.#revision = revision;
      const ready = this.#waiting.filter((w) => w.revision <= revision);
      this.#waiting = this.#waiting.filter((w) => w.revision > revision);
      for (const w of ready) w.resolve();
    }
  }

  /** Resolves once the mirror holds the bucket's revision `revision` or a later one. */
  caughtUp(revision: number): Promise<void> {
    if (revision <= this.#revision) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ revision, resolve }));
  }

  total(): number {
    return this.#total;
  }

  /** `sender`'s bytes (identity). */
  of(sender: string): number {
    return this.#mirror.get(userToken(sender))?.bytes ?? 0;
  }

  /** Counts `cost` more bytes to `sender` unless that takes it past `max`; false if it would. */
  take(sender: string, cost: number, max: number | undefined): Promise<boolean> {
    return this.cas.apply(
      userToken(sender),
      (v) =>
        max !== undefined && v + cost > max
          ? { next: v, result: false }
          : { next: v + cost, result: true },
    );
  }

  /** Adds `delta` bytes (negative: gives them back). */
  add(sender: string, delta: number): Promise<void> {
    return this.cas.apply(userToken(sender), (v) => {
      valueInvariant(v + delta >= 0, "a sender's stored bytes stay at or above zero");
      return { next: Math.max(0, v + delta), result: undefined };
    });
  }

  close(): void {
    this.#watch?.stop();
    this.#watch = null;
    for (const w of this.#waiting) w.resolve();
    this.#waiting = [];
  }
}
