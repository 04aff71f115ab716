/**
 * Abuse limits: a token bucket per session for requests, and growing delays after failed
 * logins, per address and per username, so that password guessing (and the scrypt work it
 * costs) slows to a crawl while honest users with one typo are not held up.
 */

/** Requests a session may make: `rate` per second on average, `burst` at once. */
export class TokenBucket {
  #tokens: number;
  #at = Date.now();
  /** Requests refused in a row; sustained abuse ends the connection. */
  strikes = 0;

  constructor(private readonly rate: number, private readonly burst: number) {
    this.#tokens = burst;
  }

  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens < 1) {
      this.strikes++;
      return false;
    }
    this.#tokens -= 1;
    this.strikes = 0;
    return true;
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
