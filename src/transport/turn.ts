/**
 * Runs callbacks once the current turn of the event loop is over: after every microtask, so
 * after every connection whose read completed in this turn has been handled.
 *
 * Channels seal and write their output here rather than in a microtask. Encryption and the write
 * are most of what a message costs; a microtask runs in the middle of the turn, while other
 * connections' requests (which may add to the same output) are still being handled, whereas at
 * the end of the turn everything one connection gets in it leaves in one frame and one write.
 *
 * node:timers' setImmediate runs after the turn's I/O callbacks and their microtasks, without a
 * timer's minimum delay, and costs about a third of a MessageChannel message per round.
 */

import { setImmediate } from "node:timers";

let queued: (() => void)[] = [];

function runQueued(): void {
  const run = queued;
  queued = [];
  for (const f of run) {
    try {
      f();
    } catch (e) {
      // Callers handle their own failures; this only keeps one from stopping the others.
      console.error("afterTurn: a callback failed:", e);
    }
  }
}

export function afterTurn(f: () => void): void {
  if (queued.length === 0) setImmediate(runQueued);
  queued.push(f);
}
