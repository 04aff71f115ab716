/**
 * Abuse limits: a token bucket per session for requests, and growing delays after failed
 * logins, per address and per username, so that password guessing (and the scrypt work it
 * costs) slows to a crawl while honest users with one typo are not held up.
 */

import { type Clock, monotonic } from "./clock.ts";

/**
 * How long refusals are remembered: a connection refused more than its burst within about this
 * long is flooding. Long enough that a client sending at twice the rate is caught within seconds,
 * short enough that an honest client that once overran its allowance is forgiven soon.
 */
export const FLOOD_WINDOW_MS = 10_000;

/**
 * Requests a session may make: `rate` per second on average, `burst` at once. Refusals are
 * counted as strikes that drain at `burst` per FLOOD_WINDOW_MS: a connection whose strikes pass
 * `burst` is flooding, however the refusals were spread (counting refusals "in a row" let every
 * refilled token reset the count, and a sustained flood was never cut off).
 */
export class TokenBucket {
  #tokens: number;
  #at: number;
  #strikes = 0;
  #strikesAt: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly clock: Clock = monotonic,
  ) {
    if (!(rate > 0 && burst >= 1)) throw new RangeError(`Bad token bucket ${rate}/s, ${burst}`);
    this.#tokens = burst;
    this.#at = this.#strikesAt = clock();
  }

  /**
   * Takes `cost` tokens (a cost above the burst counts as the burst, so that any request can
   * pass a full bucket). False, and a strike per token refused, when there are not enough.
   */
  take(cost = 1): boolean {
    const now = this.clock();
    const need = Math.min(cost, this.burst);
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens >= need) {
      this.#tokens -= need;
      return true;
    }
    this.#strikes = this.#strikesLeft(now) + need;
    this.#strikesAt = now;
    return false;
  }

  /** Strikes left at `now` once the drain since the last refusal is taken off (never below 0). */
  #strikesLeft(now: number): number {
    const drained = ((now - this.#strikesAt) / FLOOD_WINDOW_MS) * this.burst;
    return drained >= this.#strikes ? 0 : this.#strikes - drained;
  }

  /** Refused tokens not yet forgiven. */
  get strikes(): number {
    return this.#strikesLeft(this.clock());
  }

  /** More than the burst refused within about FLOOD_WINDOW_MS: the connection is flooding. */
  get flooding(): boolean {
    return this.strikes > this.burst;
  }
}

export interface LoginThrottleOptions {
  /** Failures allowed before delays start. */
  freeFailures: number;
  /** The first delay; each further failure doubles it. */
  baseDelayMs: number;
  maxDelayMs: number;
}

interface Record {
  failures: number;
  until: number;
  seen: number;
}

/** Entries kept at most; the oldest are dropped first (an attacker cannot grow memory). */
const MAX_ENTRIES = 100_000;

export class LoginThrottle {
  readonly #records = new Map<string, Record>();

  constructor(private readonly opts: LoginThrottleOptions) {}

  /** Milliseconds to wait before `keys` may try again (0: go ahead). */
  wait(keys: string[]): number {
    const now = Date.now();
    let wait = 0;
    for (const key of keys) {
      const r = this.#records.get(key);
      if (!r) continue;
      // Failures are forgotten once the longest delay has passed without a new one.
      if (now - r.seen > this.opts.maxDelayMs) this.#records.delete(key);
      else wait = Math.max(wait, r.until - now);
    }
    return wait;
  }

  failed(keys: string[]): void {
    const now = Date.now();
    for (const key of keys) {
      const r = this.#records.get(key) ?? { failures: 0, until: 0, seen: now };
      r.failures++;
      r.seen = now;
      const over = r.failures - this.opts.freeFailures;
      if (over > 0) {
        r.until = now + Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (over - 1));
      }
      this.#records.delete(key); // re-insert: the map's order is the age order
      this.#records.set(key, r);
    }
    while (this.#records.size > MAX_ENTRIES) {
      this.#records.delete(this.#records.keys().next().value!);
    }
  }

  succeeded(keys: string[]): void {
    for (const key of keys) this.#records.delete(key);
  }
}
