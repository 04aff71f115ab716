/**
 * A small seeded PRNG (mulberry32) for reproducible fuzz and chunking tests. Not for crypto.
 */

export class Prng {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniform u32. */
  u32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** An integer in [min, max], both ends included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** Cuts `bytes` into consecutive chunks of 1 to `maxChunk` bytes (copies, not views). */
  chunks(bytes: Uint8Array, maxChunk: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(this.int(1, maxChunk), bytes.length - at);
      out.push(bytes.slice(at, at + n));
      at += n;
    }
    return out;
  }
}

/** The seed for a fuzz run: PARLEY_FUZZ_SEED when set (to replay a failure), else `fallback`. */
export function fuzzSeed(fallback: number): number {
  let raw: string | undefined;
  try {
    raw = Deno.env.get("PARLEY_FUZZ_SEED");
  } catch {
    raw = undefined; // no --allow-env: use the fixed seed
  }
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`PARLEY_FUZZ_SEED must be an integer, got "${raw}"`);
  return n >>> 0;
}
