/** One connected client after the handshake: its channel and who it is logged in as. */

import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { ErrorCode } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import { DictPieces, EncodedValue, utf8Length, type Value } from "../protocol/value.ts";
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

/**
 * Responses of one connection that may be held at once behind one still waited for (a SEND
 * waiting to be durable, say). At either bound the server reads no further message from the
 * connection until the oldest is answered: every reply counts, not only those that wait (a
 * flood of ACKs behind a few slow SENDs once held gigabytes). 1024 keeps a pipelining client
 * busy through a slow commit; 1 MiB is far more than 1024 ordinary replies (about 40 bytes
 * each), and stops echoed PINGs of megabytes from piling up.
 */
export const MAX_HELD_REPLIES = 1024;
export const MAX_HELD_REPLY_BYTES = 1024 * 1024;

/** How long a closing connection gets to read what was sent before the close (section 8.7). */
const CLOSE_DRAIN_MS = 2000;

/** A response's place in the connection's order of responses, and once known, the response. */
export class HeldReply {
  type = 0;
  body: Value = null;
  ready = false;
  /** About the encoded size of `body`, counted in the session's held bytes. */
  size = 0;
  /** Runs once the reply has left (the pushes a reply causes come after it). */
  after: (() => unknown) | undefined = undefined;
  constructor(readonly id: number) {}
}

/** About the bytes `v` takes once encoded (header included); cheap next to encoding it. */
export function valueSize(v: Value): number {
  if (typeof v === "string") return 5 + utf8Length(v);
  if (v === null || typeof v !== "object") return 13;
  if (v instanceof Uint8Array) return 5 + v.length;
  if (v instanceof EncodedValue) return v.bytes.length;
  if (v instanceof Date) return 13;
  let n = 5;
  if (v instanceof DictPieces) {
    for (const piece of v.pieces) {
      n += piece instanceof Uint8Array ? piece.length : valueSize(piece);
    }
    return n;
  }
  if (Array.isArray(v)) {
    for (const item of v) n += valueSize(item);
    return n;
  }
  for (const key in v) {
    if (Object.hasOwn(v, key) && v[key] !== undefined) n += 1 + key.length + valueSize(v[key]);
  }
  return n;
}

/** What a session may spend: requests, flow-controlled messages, and messages before login. */
export interface SessionBuckets {
  requests: TokenBucket;
  /** ACK, FILE_CHUNK, FILE_ACK and PONG: paced by the peer's own traffic, so more generous. */
  flow: TokenBucket;
  /** Every message while not logged in: a connection is anonymous for a few messages only. */
  preLogin: TokenBucket;
}

/** The identity a session gains at login. The client never names it; the server sets it. */
export interface LoggedIn {
  /** Lowercase name: the key of everything the user owns. */
  user: string;
  /** Display form of the name. */
  name: string;
  /** The token family (device lineage) this session belongs to, revoked by LOGOUT; null without. */
  family: string | null;
  /** Whether that family's tokens rotate (a client newer than protocol version 1). */
  rotates: boolean;
  /** The device id the client gave at LOGIN, kept for the family CHANGE_PASSWORD starts. */
  device: Uint8Array | null;
  /** A one-shot session (a script): not online, never kicks, never kicked, gets no pushes. */
  oneShot: boolean;
}

export class Session {
  readonly id = nextSessionId++;
  login: LoggedIn | null = null;
  /** The channel's `reads` when the keepalive last sent a PING (-1: none sent). */
  pingSentAtRead = -1;
  /** Streams the user's inbox to this session while it is logged in. */
  pump: InboxPump | null = null;
  /** When the session last became logged out (the handshake, or a LOGOUT), for the login deadline. */
  loggedOutAt: number;

  constructor(
    readonly channel: Channel,
    /** The peer's address, for per-address limits. */
    readonly ip: string,
    /** This session's allowances. */
    readonly buckets: SessionBuckets,
    /** The server's clock: the keepalive's, the buckets', and the one handlers read. */
    readonly clock: Clock = systemClock,
  ) {
    this.loggedOutAt = clock.now();
  }

  /** The login deadline starts again (a LOGOUT). */
  loggedOut(): void {
    this.loggedOutAt = this.clock.now();
  }

  #loggedInOnce = false;

  /** Called at each login: a connection that has logged in is no stranger after a LOGOUT. */
  loggedIn(): void {
    this.#loggedInOnce = true;
  }

  /**
   * Not logged in, and never on this connection: the strict limits for anonymous peers apply.
   * A connection that logged out keeps the ordinary ones: its ACKs for what arrived before the
   * LOGOUT may still be on the way.
   */
  get stranger(): boolean {
    return this.login === null && !this.#loggedInOnce;
  }

  get closed(): boolean {
    return this.channel.closed;
  }

  /** Responses waiting for an earlier one that is not ready yet, in request order. */
  #held: HeldReply[] = [];
  /** The `size`s of the replies in #held. */
  #heldBytes = 0;
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
    const slot = new HeldReply(id);
    slot.type = type;
    slot.body = body;
    slot.after = after;
    slot.ready = true;
    this.hold(slot);
    return false;
  }

  /**
   * Keeps `slot`'s place (its request's) among the responses until `fill` gives its answer:
   * later replies queue behind it.
   */
  hold<T extends HeldReply>(slot: T): T {
    slot.size = valueSize(slot.body);
    this.#heldBytes += slot.size;
    this.#held.push(slot);
    return slot;
  }

  /** The answer for a place `hold` kept; it leaves once every response before it has. */
  fill(slot: HeldReply, type: number, body: Value, after?: () => unknown): void {
    if (slot.ready) throw new Error(`The reply to request ${slot.id} was filled twice`);
    if (body !== slot.body) {
      // A slot stays in #held until it is ready, so it is still counted there.
      const size = valueSize(body);
      this.#heldBytes += size - slot.size;
      slot.size = size;
    }
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

  /** About the bytes of those responses. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /**
   * Undefined while the held responses are within both bounds; otherwise a promise that resolves
   * once they are (or the connection closed): the caller reads no further message until then.
   */
  roomForReplies(): Promise<void> | undefined {
    if (!this.#overHeld()) return;
    return this.#belowHeld();
  }

  #overHeld(): boolean {
    return this.#held.length >= MAX_HELD_REPLIES || this.#heldBytes >= MAX_HELD_REPLY_BYTES;
  }

  async #belowHeld(): Promise<void> {
    while (this.#overHeld() && !this.closed) {
      await new Promise<void>((resolve) => (this.#drained ??= []).push(resolve));
    }
  }

  #release(): void {
    let n = 0;
    while (n < this.#held.length && this.#held[n].ready) n++;
    if (n === 0) return;
    // Out of the queue before sending: a reply that fails to go must not hold up the rest.
    const ready = this.#held.splice(0, n);
    for (const r of ready) this.#heldBytes -= r.size;
    if (this.#heldBytes < 0 || (this.#held.length === 0 && this.#heldBytes !== 0)) {
      throw new Error(`Held reply bytes ${this.#heldBytes} with ${this.#held.length} held`);
    }
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

  /**
   * Tells the client why (unless `type` is null: the last reply said it), stops handling its
   * messages, and closes without losing what was sent (Channel.finish). The notice comes after
   * the replies still waited for (a SEND's durability), if they come within `waitMs`; past that
   * it goes ahead of them, and they are not sent. The output then gets `waitMs` to leave.
   * Resolves once it has left.
   */
  async closeWith(type: number | null, body: Value, waitMs = 2000): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.#held.length > 0) await this.#heldSent(waitMs);
    if (type !== null && !this.closed) this.push(type, body);
    await this.channel.finish(waitMs, CLOSE_DRAIN_MS);
  }

  /** Resolves once no reply is held, the connection has closed, or `ms` have passed. */
  async #heldSent(ms: number): Promise<void> {
    let timer: TimerHandle | undefined;
    let late = false;
    const timeout = new Promise<void>((resolve) =>
      timer = this.clock.setTimer(() => {
        late = true;
        resolve();
      }, ms)
    );
    try {
      while (this.#held.length > 0 && !this.closed && !late) {
        await Promise.race([
          new Promise<void>((resolve) => (this.#drained ??= []).push(resolve)),
          timeout,
        ]);
      }
    } finally {
      this.clock.clearTimer(timer);
    }
  }

  /** KICK, then close: another login of the same account took over, or its tokens ended. */
  kick(reason: string): Promise<void> {
    return this.closeWith(MsgType.KICK, { reason });
  }
}
