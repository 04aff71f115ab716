/** One connected client after the handshake: its channel and who it is logged in as. */

import { ErrorCode } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import type { Value } from "../protocol/value.ts";
import type { Channel } from "../transport/channel.ts";
import type { InboxPump } from "./delivery.ts";
import type { TokenBucket } from "./throttle.ts";

/**
 * Session ids name sessions in the log, so they must not repeat across restarts: they count on
 * from the process's start time in milliseconds × 1000. A later run's ids are larger unless the
 * earlier run opened more than 1000 sessions per millisecond of its life or the clock stepped
 * back; they stay below 2^53 until the year 2255.
 */
let nextSessionId = Date.now() * 1000 + 1;

/** A response's place in the connection's order of responses, and once known, the response. */
export class HeldReply {
  type = 0;
  body: Value = null;
  ready = false;
  /** Runs once the reply has left (the pushes a reply causes come after it). */
  after: (() => unknown) | undefined = undefined;
  constructor(readonly id: number) {}
}

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
    /** The peer's address, for per-address limits. */
    readonly ip: string,
    /** This session's request allowance. */
    readonly bucket: TokenBucket,
  ) {}

  get closed(): boolean {
    return this.channel.closed;
  }

  /** Responses waiting for an earlier one that is not ready yet, in request order. */
  #held: HeldReply[] = [];
  /** Callers of belowHeld waiting for room; made when first needed, like most sessions never do. */
  #drained: (() => void)[] | null = null;

  /**
   * Sends a response to request `id`, after any earlier response still being waited for.
   * True if it left now (the caller then runs what follows it); false if it waits, and then
   * `after` runs once it has left.
   */
  reply(id: number, type: number, body: Value, after?: () => unknown): boolean {
    if (this.#held.length === 0) {
      this.channel.send(type, id, body);
      return true;
    }
    const slot = this.hold(new HeldReply(id));
    slot.type = type;
    slot.body = body;
    slot.after = after;
    slot.ready = true;
    return false;
  }

  /**
   * Keeps `slot`'s place (its request's) among the responses until `fill` gives its answer:
   * later replies queue behind it.
   */
  hold<T extends HeldReply>(slot: T): T {
    this.#held.push(slot);
    return slot;
  }

  /** The answer for a place `hold` kept; it leaves once every response before it has. */
  fill(slot: HeldReply, type: number, body: Value, after?: () => unknown): void {
    slot.type = type;
    slot.body = body;
    slot.after = after;
    slot.ready = true;
    this.#release();
  }

  /** Responses not yet sent because one before them is still waited for. */
  get heldReplies(): number {
    return this.#held.length;
  }

  /** Resolves once fewer than `max` responses are held. */
  async belowHeld(max: number): Promise<void> {
    while (this.#held.length >= max && !this.closed) {
      await new Promise<void>((resolve) => (this.#drained ??= []).push(resolve));
    }
  }

  #release(): void {
    let n = 0;
    while (n < this.#held.length && this.#held[n].ready) n++;
    if (n === 0) return;
    // Out of the queue before sending: a reply that fails to go must not hold up the rest.
    const ready = this.#held.splice(0, n);
    for (const r of ready) {
      try {
        this.channel.send(r.type, r.id, r.body);
      } catch (e) {
        console.error(`Reply to request ${r.id} could not be sent:`, e);
        r.after = undefined;
        this.channel.send(MsgType.GENERAL_ERROR, r.id, {
          code: ErrorCode.INTERNAL,
          message: "The server failed to send its answer",
        });
      }
    }
    for (const r of ready) r.after?.();
    const drained = this.#drained;
    this.#drained = null;
    if (drained) { for (const wake of drained) wake(); }
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
