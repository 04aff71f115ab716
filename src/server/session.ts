/** One connected client after the handshake: its channel and who it is logged in as. */

import { MsgType } from "../protocol/messages.ts";
import type { Value } from "../protocol/value.ts";
import type { Channel } from "../transport/channel.ts";
import type { InboxPump } from "./delivery.ts";
import type { TokenBucket } from "./throttle.ts";

let nextSessionId = 1;

/** The identity a session gains at login. The client never names it; the server sets it. */
export interface LoggedIn {
  /** Lowercase name: the key of everything the user owns. */
  user: string;
  /** Display form of the name. */
  name: string;
  /** The resume token this session logged in with or was issued, revoked by LOGOUT. */
  token: Uint8Array | null;
}

export class Session {
  readonly id = nextSessionId++;
  login: LoggedIn | null = null;
  /** When the keepalive last sent a PING (0: never). */
  pingSentAt = 0;
  /** Streams the user's inbox to this session while it is logged in. */
  pump: InboxPump | null = null;

  constructor(
    readonly channel: Channel,
    /** "address:port" of the peer. */
    readonly remote: string,
    /** The peer's address alone, for per-address limits. */
    readonly ip: string,
    /** This session's request allowance. */
    readonly bucket: TokenBucket,
  ) {}

  get closed(): boolean {
    return this.channel.closed;
  }

  /** Sends a response to request `id`. */
  reply(id: number, type: number, body: Value): void {
    this.channel.send(type, id, body);
  }

  /** Sends a push (request id 0). */
  push(type: number, body: Value): void {
    this.channel.send(type, 0, body);
  }

  /** Set once the server has decided to close this connection: no further request is handled. */
  closing = false;
  /** When the session last became logged out (the handshake, or a LOGOUT), for the login deadline. */
  loggedOutAt = Date.now();

  /** Tells the client why, waits (briefly) for it to leave, then closes the connection. */
  async closeWith(type: number, body: Value, waitMs = 2000): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.push(type, body);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.channel.flush(),
      new Promise((resolve) => timer = setTimeout(resolve, waitMs)),
    ]);
    clearTimeout(timer);
    this.channel.close();
  }

  /** KICK, then close: another login of the same account took over. */
  kick(reason: string): Promise<void> {
    return this.closeWith(MsgType.KICK, { reason });
  }
}
