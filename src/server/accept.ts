/**
 * The accept loop every listener shares (chat and HTTP). A failed accept (out of file descriptors
 * and the like) is logged and retried after a pause: it must never end the process or the loop.
 */

import type { Logger } from "./log.ts";

/** How long a listener waits after a failed accept before it tries again. */
export const ACCEPT_RETRY_MS = 100;

/**
 * Hands each accepted connection to `onConn` until `stopping()` or the listener is closed.
 * `event` names the log line of a failed accept.
 */
export async function acceptEach(
  listener: Deno.Listener,
  stopping: () => boolean,
  log: Logger,
  event: string,
  onConn: (conn: Deno.Conn) => void,
): Promise<void> {
  while (!stopping()) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (e) {
      if (stopping() || e instanceof Deno.errors.BadResource) return;
      log.error(event, { error: (e as Error).message });
      await new Promise((r) => setTimeout(r, ACCEPT_RETRY_MS));
      continue;
    }
    if (stopping()) closeQuietly(conn);
    else onConn(conn);
  }
}

/** Closes a connection or listener that may be closed already. */
export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
