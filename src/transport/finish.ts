/** How both channels (channel.ts, web_channel.ts) end a connection without losing what was sent. */

import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { Transport } from "./transport.ts";

/** What the ending needs of a channel. */
export interface Finishable {
  readonly closed: boolean;
  /** Resolves once what was queued has been handed to the transport. */
  flush(): Promise<void>;
  close(): void;
}

/**
 * Gives the output at most `flushMs` to reach the transport, then shuts the sending side, and
 * returns the timer that closes the channel `drainMs` later (meanwhile the caller reads and drops
 * what the peer still sends). Closing with unread input would make the kernel answer with a
 * reset, and the peer's kernel then drops what it had not handed over yet: the answers and the
 * notice before a close were lost exactly when they mattered. A peer that does not read, or a
 * shutdown that fails, closes the channel at once; then, or if the channel was closed meanwhile,
 * there is no timer.
 */
export async function shutAfterFlush(
  channel: Finishable,
  transport: Transport,
  clock: Clock,
  flushMs: number,
  drainMs: number,
): Promise<TimerHandle | undefined> {
  let timer: TimerHandle | undefined;
  const flushed = await Promise.race([
    channel.flush().then(() => true),
    new Promise<boolean>((resolve) => timer = clock.setTimer(() => resolve(false), flushMs)),
  ]);
  clock.clearTimer(timer);
  if (channel.closed) return undefined;
  if (!flushed) {
    channel.close(); // a peer that does not read gets nothing more from waiting
    return undefined;
  }
  try {
    await transport.closeWrite();
  } catch {
    channel.close();
    return undefined;
  }
  if (channel.closed) return undefined;
  return clock.setTimer(() => channel.close(), drainMs);
}
