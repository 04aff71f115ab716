/**
 * Abuse limits: a token bucket per session for requests; growing delays after failed password
 * and token checks, so that guessing (and the scrypt work it costs) slows to a crawl while
 * honest users with one typo are not held up; and a budget for new accounts.
 */

import { type Clock, systemClock } from "../clock/clock.ts";

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
    private readonly clock: Clock = systemClock,
  ) {
    if (!(rate > 0 && burst >= 1)) throw new RangeError(`Bad token bucket ${rate}/s, ${burst}`);
    this.#tokens = burst;
    this.#at = this.#strikesAt = clock.now();
  }

  /**
   * Takes `cost` tokens (a cost above the burst counts as the burst, so that any request can
   * pass a full bucket). False, and a strike per token refused, when there are not enough.
   */
  take(cost = 1): boolean {
    const now = this.clock.now();
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
    return this.#strikesLeft(this.clock.now());
  }

  /** More than the burst refused within about FLOOD_WINDOW_MS: the connection is flooding. */
  get flooding(): boolean {
    return this.strikes > this.burst;
  }
}

export interface LoginThrottleOptions {
  /** Failures allowed per address, and per username from one address, before delays start. */
  freeFailures: number;
  /**
   * Failures allowed per username from all addresses together before delays start; higher,
   * since many addresses add up, and not applied where the account has logged in before.
   */
  userFreeFailures: number;
  /** The first delay; each further failure doubles it. */
  baseDelayMs: number;
  maxDelayMs: number;
  clock?: Clock;
}

interface Count {
  failures: number;
  /** When the last failure was counted (clock ms). */
  last: number;
}

/** Counts kept at most; the oldest are dropped first (an attacker cannot grow memory). */
const MAX_ENTRIES = 100_000;

/** Addresses remembered per successful login, at most; the oldest are dropped first. */
const MAX_KNOWN = 100_000;

/** How long an address stays known for an account after a login from it: a month of use. */
const KNOWN_MS = 30 * 24 * 60 * 60 * 1000;

/** One check under way, counted as failed from its start until it is settled. */
export class Attempt {
  settled = false;
  constructor(
    /** Each key counted, with the failures it allows before delays. */
    readonly keys: readonly { key: string; free: number }[],
    /** The account and address of a password check, remembered when it succeeds. */
    readonly known: string | null,
  ) {}
}

/**
 * Growing delays after failed checks. An attempt counts as a failure the moment it starts, so
 * concurrent guesses cannot all pass one check before any of them is counted; a success gives
 * its count back. Password checks count per address, per username and address, and per
 * username from addresses the account has not logged in from; so an attacker elsewhere can slow
 * guessing at an account without locking its owner out.
 */
export class LoginThrottle {
  readonly #counts = new Map<string, Count>();
  readonly #known = new Map<string, number>();
  readonly #clock: Clock;

  constructor(private readonly opts: LoginThrottleOptions) {
    this.#clock = opts.clock ?? systemClock;
  }

  /** Starts a password check for `user` (lowercase) from `address` (a peerKey: an IPv6 client's /64). */
  beginPassword(user: string, address: string): Attempt | number {
    const { freeFailures: free, userFreeFailures } = this.opts;
    const pair = `${user}|${address}`;
    const keys = [{ key: `addr:${address}`, free }, { key: `pair:${pair}`, free }];
    if (!this.#isKnown(pair)) keys.push({ key: `user:${user}`, free: userFreeFailures });
    return this.#begin(new Attempt(keys, pair));
  }

  /** Starts a resume token check from `address`. */
  beginToken(address: string): Attempt | number {
    return this.#begin(
      new Attempt([{ key: `addr:${address}`, free: this.opts.freeFailures }], null),
    );
  }

  /** Ends an attempt that failed: it was counted when it began. */
  failed(attempt: Attempt): void {
    assertUnsettled(attempt);
    attempt.settled = true;
  }

  /**
   * Ends an attempt that succeeded: it gives back its count, the pair of account and address
   * is cleared and becomes known. The address's count and the account's are not cleared: one
   * good password must not wipe a record of guesses.
   */
  succeeded(attempt: Attempt): void {
    this.withdrawn(attempt);
    for (const { key } of attempt.keys) if (key.startsWith("pair:")) this.#counts.delete(key);
    if (attempt.known !== null) {
      this.#known.delete(attempt.known);
      this.#known.set(attempt.known, this.#clock.now());
      if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
    }
  }

  /**
   * Ends an attempt whose check never ran (the hashing queue was full, the store failed): it
   * gives back its count and proves nothing, so nothing is cleared or remembered.
   */
  withdrawn(attempt: Attempt): void {
    assertUnsettled(attempt);
    attempt.settled = true;
    for (const { key } of attempt.keys) {
      const count = this.#counts.get(key);
      if (!count) continue; // dropped as the oldest meanwhile
      if (count.failures <= 1) this.#counts.delete(key);
      else count.failures--;
    }
  }

  #isKnown(pair: string): boolean {
    const at = this.#known.get(pair);
    if (at === undefined) return false;
    if (this.#clock.now() - at <= KNOWN_MS) return true;
    this.#known.delete(pair);
    return false;
  }

  /** Counts the attempt now, or returns how long it must wait (and counts nothing). */
  #begin(attempt: Attempt): Attempt | number {
    const now = this.#clock.now();
    let wait = 0;
    for (const { key, free } of attempt.keys) wait = Math.max(wait, this.#wait(key, free, now));
    if (wait > 0) return wait;
    for (const { key } of attempt.keys) {
      const count = this.#counts.get(key) ?? { failures: 0, last: now };
      count.failures++;
      count.last = now;
      this.#counts.delete(key); // re-insert: the map's order is the age order
      this.#counts.set(key, count);
    }
    while (this.#counts.size > MAX_ENTRIES) {
      this.#counts.delete(this.#counts.keys().next().value!);
    }
    return attempt;
  }

  #wait(key: string, free: number, now: number): number {
    const count = this.#counts.get(key);
    if (!count) return 0;
    const since = now - count.last;
    if (since < 0) throw new Error(`The clock went back by ${-since} ms`);
    // Failures are forgotten once the longest delay has passed without a new one.
    if (since > this.opts.maxDelayMs) {
      this.#counts.delete(key);
      return 0;
    }
    const over = count.failures - free;
    if (over <= 0) return 0;
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (over - 1));
    return Math.max(0, delay - since);
  }
}

function assertUnsettled(attempt: Attempt): void {
  if (attempt.settled) throw new Error("A login attempt was settled twice");
}

export interface RegistrationBudgetOptions {
  /** New accounts per address per window. */
  perAddress: number;
  /** New accounts per window from all addresses together. */
  overall: number;
  windowMs: number;
  clock?: Clock;
}

/** A bucket that holds up to `size` and refills `size` per window. */
interface Allowance {
  left: number;
  at: number;
}

/** Where a registration was refused: its address's allowance, or the server's. */
export type BudgetRefusal = { scope: "address" | "server"; waitMs: number };

/**
 * How many REGISTER requests may go on to hash a password: each costs a full scrypt hash, so
 * new accounts get an allowance per address and one for the whole server, refilled steadily.
 */
export class RegistrationBudget {
  readonly #addresses = new Map<string, Allowance>();
  readonly #server: Allowance;
  readonly #clock: Clock;

  constructor(private readonly opts: RegistrationBudgetOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#server = { left: opts.overall, at: this.#clock.now() };
  }

  /** Takes one registration for `address`, or says which allowance is empty and for how long. */
  take(address: string): BudgetRefusal | null {
    const now = this.#clock.now();
    const { perAddress, overall } = this.opts;
    const mine = this.#addresses.get(address) ?? { left: perAddress, at: now };
    this.#refill(mine, perAddress, now);
    this.#refill(this.#server, overall, now);
    if (mine.left < 1) return { scope: "address", waitMs: this.#until(mine, perAddress) };
    if (this.#server.left < 1) {
      return { scope: "server", waitMs: this.#until(this.#server, overall) };
    }
    mine.left--;
    this.#server.left--;
    this.#addresses.delete(address); // re-insert: the map's order is the age order
    this.#addresses.set(address, mine);
    // Dropping the oldest only gives an address back its full allowance; the server's bounds it.
    while (this.#addresses.size > MAX_ENTRIES) {
      this.#addresses.delete(this.#addresses.keys().next().value!);
    }
    return null;
  }

  /** Gives a registration back (it was refused before it cost a hash). */
  giveBack(address: string): void {
    const mine = this.#addresses.get(address);
    if (mine) mine.left = Math.min(this.opts.perAddress, mine.left + 1);
    this.#server.left = Math.min(this.opts.overall, this.#server.left + 1);
  }

  #refill(allowance: Allowance, size: number, now: number): void {
    const since = now - allowance.at;
    if (since < 0) throw new Error(`The clock went back by ${-since} ms`);
    allowance.left = Math.min(size, allowance.left + (since / this.opts.windowMs) * size);
    allowance.at = now;
  }

  /** Milliseconds until an empty allowance holds one registration again. */
  #until(allowance: Allowance, size: number): number {
    return Math.ceil(((1 - allowance.left) * this.opts.windowMs) / size);
  }
}
