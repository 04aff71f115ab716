/**
 * Time as every part of Parley reads it: one object, passed down, so that tests and the
 * simulation can drive hours of timers in microseconds instead of sleeping.
 *
 * Durations (limits, delays, the keepalive, deferred commits) are measured on `now()`, a
 * monotonic clock: a wall clock can step (NTP, an operator, a VM resumed), and a step back once
 * refused every request while a step forward closed every session. What is stored or shown (a
 * token's expiry, a message's time) reads `wall()`.
 */

/** A timer set on a Clock; opaque to its users. */
export type TimerHandle = { readonly clockTimer: true } | number;

export interface Clock {
  /**
   * Milliseconds from an arbitrary origin; never goes backwards. The system clock's may stand
   * still through a batch of callbacks: not for measuring durations (see readNow).
   */
  now(): number;
  /** Milliseconds since the Unix epoch, as `Date.now()`. */
  wall(): number;
  /** Calls `fn` once, when `ms` have passed on this clock. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; nothing happens for one already fired, cancelled, or undefined. */
  clearTimer(timer: TimerHandle | undefined): void;
}

/**
 * `performance.now()` read once per run of synchronous code: a read is a call into the runtime,
 * and a busy server made three per chat message (rate limits, send budget, the read's time).
 * The value is kept until the microtask queue reaches the reset queued with the first read: every
 * callback already queued then (a whole batch of completed reads, say) sees the same time, which
 * may be tens of milliseconds old by the last of them. That is close enough for what reads this
 * clock (rate limits, deadlines, timers' delays); a duration must be measured with
 * `performance.now()`.
 */
let coarseNow = -1;
const forgetNow = () => {
  coarseNow = -1;
};

function readNow(): number {
  if (coarseNow < 0) {
    coarseNow = performance.now();
    queueMicrotask(forgetNow);
  }
  return coarseNow;
}

/** The process's clocks and timers. */
export const systemClock: Clock = {
  now: readNow,
  wall: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimer: (timer) => clearTimeout(timer as number | undefined),
};

interface ManualTimer {
  readonly clockTimer: true;
  due: number;
  /** Order of setting, so that timers due at the same time fire in that order. */
  order: number;
  fn: (() => void) | null;
}

/**
 * A clock that moves only when told to: `advance` runs every timer that falls due, in order of
 * due time (then of setting), each at its own time. Deterministic, for tests and simulations.
 */
export class ManualClock implements Clock {
  #now: number;
  readonly #wallOrigin: number;
  #timers: ManualTimer[] = [];
  #order = 0;

  constructor(start = 0, wallOrigin = Date.UTC(2026, 0, 1)) {
    this.#now = start;
    this.#wallOrigin = wallOrigin - start;
  }

  now(): number {
    return this.#now;
  }

  wall(): number {
    return this.#wallOrigin + this.#now;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    if (!Number.isFinite(ms)) throw new RangeError(`A timer of ${ms} ms`);
    const timer: ManualTimer = {
      clockTimer: true,
      due: this.#now + Math.max(0, ms),
      order: this.#order++,
      fn,
    };
    this.#timers.push(timer);
    return timer;
  }

  clearTimer(timer: TimerHandle | undefined): void {
    if (typeof timer !== "object") return;
    const t = timer as ManualTimer;
    t.fn = null;
    const at = this.#timers.indexOf(t);
    if (at >= 0) this.#timers.splice(at, 1);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.length;
  }

  /** When the next timer falls due, or null when none is set. */
  nextDue(): number | null {
    const next = this.#next();
    return next ? next.due : null;
  }

  /**
   * Moves time forward by `ms`, firing each timer that falls due at its own time, including
   * timers that those set. Timers fire synchronously; await between calls to let their work run.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`Time only moves forward (${ms} ms)`);
    const until = this.#now + ms;
    for (let t = this.#next(); t !== null && t.due <= until; t = this.#next()) {
      this.#timers.splice(this.#timers.indexOf(t), 1);
      this.#now = Math.max(this.#now, t.due);
      const fn = t.fn;
      t.fn = null;
      fn?.();
    }
    this.#now = until;
  }

  #next(): ManualTimer | null {
    let best: ManualTimer | null = null;
    for (const t of this.#timers) {
      if (best === null || t.due < best.due || (t.due === best.due && t.order < best.order)) {
        best = t;
      }
    }
    return best;
  }
}
