/**
 * Each sender's rate budget for queued content: bytes per minute, as a token bucket per sender
 * that refills continuously. A send is refused while the bucket is empty; one that passes may
 * take it below zero (its cost is known only once it is queued), so a sender can go over by at
 * most one message, which they then wait out.
 */

import { type Clock, systemClock } from "../clock/clock.ts";

/** Buckets kept before full ones are forgotten: a full bucket is the same as no bucket. */
const TIDY_AT = 10_000;

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms, the budget's clock). */
  at: number;
}

export class SendBudget {
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    /** Bytes a sender may queue per minute, and at once after a quiet minute. */
    readonly bytesPerMinute: number,
    /** Whose `now()` the buckets refill by (tests step it by hand). */
    private readonly clock: Clock = systemClock,
  ) {
    if (!(bytesPerMinute > 0)) throw new RangeError("bytesPerMinute must be positive");
  }

  #refilled(sender: string): Bucket | undefined {
    const b = this.#buckets.get(sender);
    if (!b) return undefined;
    const now = this.clock.now();
    b.tokens = Math.min(
      this.bytesPerMinute,
      b.tokens + (now - b.at) * this.bytesPerMinute / 60_000,
    );
    b.at = now;
    return b;
  }

  /** Milliseconds until `sender` may queue content again; 0 if they may now. */
  waitMs(sender: string): number {
    const b = this.#refilled(sender);
    if (!b || b.tokens > 0) return 0;
    return Math.ceil((1 - b.tokens) * 60_000 / this.bytesPerMinute);
  }

  /** Takes `bytes` that `sender` has just queued. */
  charge(sender: string, bytes: number): void {
    if (bytes <= 0) return;
    let b = this.#refilled(sender);
    if (!b) {
      if (this.#buckets.size >= TIDY_AT) this.#tidy();
      b = { tokens: this.bytesPerMinute, at: this.clock.now() };
      this.#buckets.set(sender, b);
    }
    b.tokens -= bytes;
  }

  /** Forgets buckets that have filled up again. */
  #tidy(): void {
    for (const sender of [...this.#buckets.keys()]) {
      const b = this.#refilled(sender)!;
      if (b.tokens >= this.bytesPerMinute) this.#buckets.delete(sender);
    }
  }

  /** Senders with a bucket (tests). */
  get size(): number {
    return this.#buckets.size;
  }
}
