/**
 * Every session past its handshake, logged in or not: the keepalive checks them, and shutdown
 * tells each that the server is stopping. A session is here from its handshake until its
 * connection's serving ends.
 */

import { ErrorCode } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import type { Session } from "./session.ts";

/** How long shutdown's notice gets to leave before a session's connection is closed anyway. */
export const SHUTDOWN_NOTICE_MS = 1000;

export class SessionRegistry implements Iterable<Session> {
  readonly #sessions = new Set<Session>();

  get size(): number {
    return this.#sessions.size;
  }

  add(session: Session): void {
    assert(!this.#sessions.has(session), "a session added twice");
    this.#sessions.add(session);
  }

  remove(session: Session): void {
    assert(this.#sessions.delete(session), "a session removed that was not there");
  }

  [Symbol.iterator](): Iterator<Session> {
    return this.#sessions.values();
  }

  /** Sends SHUTTING_DOWN to every session and closes it; resolves once each notice has left. */
  async notifyShutdown(): Promise<void> {
    await Promise.all(
      [...this.#sessions].map((s) =>
        s.closeWith(MsgType.GENERAL_ERROR, {
          code: ErrorCode.SHUTTING_DOWN,
          message: "The server is shutting down",
        }, SHUTDOWN_NOTICE_MS)
      ),
    );
  }
}

function assert(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`Session registry invariant broken: ${what}`);
}
