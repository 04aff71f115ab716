/**
 * Runs callbacks once the current turn of the event loop is over: after every microtask, so
 * after every connection whose read completed in this turn has been handled.
 *
 * Channels seal and write their output here rather than in a microtask. Encryption and the write
 * are most of what a message costs; a microtask runs in the middle of the turn, while other
 * connections' requests (which may add to the same output) are still being handled, whereas at
 * the end of the turn everything one connection gets in it leaves in one frame and one write.
 * A message on a MessageChannel is delivered in the next turn without a timer's minimum delay
 * (measured on Deno 2.9: after 30 rounds of microtasks on several chains; only a port's first
 * message, and one posted while the port is still dispatching the previous one, come sooner).
 * node:worker_threads' ports can be unreferenced: an idle one must not keep a process alive.
 */

import { MessageChannel, type MessagePort } from "node:worker_threads";

let queued: (() => void)[] = [];
let ports: { sender: MessagePort; receiver: MessagePort } | null = null;

function runQueued(): void {
  const run = queued;
  queued = [];
  ports?.receiver.unref();
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
  if (ports === null) {
    const channel = new MessageChannel();
    channel.port1.on("message", runQueued);
    ports = { sender: channel.port2, receiver: channel.port1 };
  }
  if (queued.length === 0) {
    ports.receiver.ref();
    ports.sender.postMessage(null);
  }
  queued.push(f);
}
