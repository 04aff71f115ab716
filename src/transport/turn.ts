/**
 * Runs callbacks once the current turn of the event loop is over: after every microtask, so
 * after every connection whose read completed in this turn has been handled.
 *
 * Channels seal and write their output here rather than in a microtask. Encryption and the write
 * are most of what a message costs; a microtask runs in the middle of the turn, while other
 * connections' requests (which may add to the same output) are still being handled, whereas at
 * the end of the turn everything one connection gets in it leaves in one frame and one write.
 * A MessageChannel message is delivered in the next turn without a timer's minimum delay.
 */

let queued: (() => void)[] = [];
let port: MessagePort | null = null;

function runQueued(): void {
  const run = queued;
  queued = [];
  for (const f of run) f();
}

export function afterTurn(f: () => void): void {
  if (port === null) {
    const channel = new MessageChannel();
    channel.port1.onmessage = runQueued;
    port = channel.port2;
  }
  if (queued.length === 0) port.postMessage(null);
  queued.push(f);
}
