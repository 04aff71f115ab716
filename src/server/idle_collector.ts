/**
 * Gives memory back once the server goes quiet after a burst. Thousands of logins leave tens of
 * megabytes of garbage in V8's heap, and the heap keeps the size the burst grew it to. V8's own
 * memory reducer, which would shrink it, starts only after a full collection, and an idle server
 * may never make one: 5,000 idle connections then held 25.6 KiB of RSS each, half of it garbage and
 * empty heap, for as long as they stayed idle.
 *
 * So the server watches its heap: once it has grown by GROWTH_BYTES since its low point and then
 * the server has been quiet for QUIET_TICKS seconds (no frame from any client, no output waiting,
 * next to no allocation), it runs one memory-reducing full collection (the one V8 runs before
 * giving up on an allocation: it compacts and releases empty pages). That pauses the server
 * (about 160 ms with 5,000 connections just logged in; it grows with the live heap) at a time
 * when nobody is sending, and at most once per MIN_GAP_MS.
 *
 * It needs V8's `gc` function (`--expose-gc`, in v8_flags.ts); without it, it does nothing.
 */

import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { Logger } from "./log.ts";

/** How often the heap is looked at. */
export const TICK_MS = 1000;
/** Ticks in a row with (next to) no allocation before the server counts as quiet. */
export const QUIET_TICKS = 3;
/** What a tick may allocate and still count as quiet (the keepalive's own work, a few requests). */
export const QUIET_BYTES = 1024 * 1024;
/** Heap growth since its low point that is worth a pause to give back. */
export const GROWTH_BYTES = 8 * 1024 * 1024;
/** The least time between two collections. */
export const MIN_GAP_MS = 60_000;

export interface IdleCollectorDeps {
  clock: Clock;
  log: Logger;
  /** Bytes of V8 heap in use (live and garbage). */
  heapUsed(): number;
  /** A count that rises with every frame read from a client. */
  framesRead(): number;
  /** Bytes waiting for clients' sockets. */
  outboundBytes(): number;
  /** A full collection that also shrinks the heap. */
  collect(): void;
  /** Told of each collection: how long it paused the server and the heap bytes it freed. */
  collected?(seconds: number, freedBytes: number): void;
}

/** V8's `gc` when the process was started with `--expose-gc`. */
type GcFunction = (options?: { type?: string; execution?: string; flavor?: string }) => void;

/** The memory-reducing collection of this process, or null when V8 does not expose one. */
export function reducingCollection(): (() => void) | null {
  const gc = (globalThis as { gc?: GcFunction }).gc;
  if (typeof gc !== "function") return null;
  // "last-resort": the collection V8 runs before an out-of-memory failure; a plain gc() frees
  // the garbage but keeps the heap's pages.
  return () => gc({ type: "major", execution: "sync", flavor: "last-resort" });
}

export class IdleCollector {
  /** The least heap in use seen since the last collection: what growth is measured from. */
  #low: number;
  #last: number;
  #lastFrames: number;
  #quietTicks = 0;
  /** When the last collection ran, on the clock. */
  #lastRun = -Infinity;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(private readonly deps: IdleCollectorDeps) {
    this.#low = this.#last = deps.heapUsed();
    this.#lastFrames = deps.framesRead();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.deps.clock.clearTimer(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.deps.clock.setTimer(() => this.#tick(), TICK_MS);
  }

  #tick(): void {
    try {
      this.#look();
    } catch (e) {
      this.deps.log.error("memory.collect_failed", { error: (e as Error).message });
    } finally {
      this.#schedule();
    }
  }

  #look(): void {
    const used = this.deps.heapUsed();
    const frames = this.deps.framesRead();
    // A fall means a collection ran, which only allocation sets off: not quiet either.
    const quiet = frames === this.#lastFrames && this.deps.outboundBytes() === 0 &&
      used >= this.#last && used - this.#last <= QUIET_BYTES;
    this.#lastFrames = frames;
    this.#quietTicks = quiet ? this.#quietTicks + 1 : 0;
    this.#last = used;
    this.#low = Math.min(this.#low, used);
    const now = this.deps.clock.now();
    if (
      this.#quietTicks < QUIET_TICKS || used - this.#low < GROWTH_BYTES ||
      now - this.#lastRun < MIN_GAP_MS
    ) return;
    const started = performance.now();
    this.deps.collect();
    const seconds = (performance.now() - started) / 1000;
    const after = this.deps.heapUsed();
    this.#low = this.#last = after;
    this.#lastRun = now;
    this.#quietTicks = 0;
    this.deps.collected?.(seconds, used - after);
    this.deps.log.info("memory.collected", {
      ms: Math.round(seconds * 1000),
      heap_before_mib: mib(used),
      heap_after_mib: mib(after),
    });
  }
}

const mib = (bytes: number) => Math.round(bytes / (1024 * 1024) * 10) / 10;
