/**
 * A connection that survives network drops: when the server goes away, reconnect with
 * backoff and resume with the token (no password, no slow hash), at another of the server's
 * addresses if it has several (a cluster's nodes). Messages sent while the link
 * is down wait for it and go out with their original id, so a resend is never a duplicate.
 */

import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import type { Message } from "../protocol/message_codec.ts";
import { msgTypeName } from "../protocol/messages.ts";
import {
  ConnectionClosedError,
  type ConnectOptions,
  newMessageId,
  ParleyClient,
  type SentReceipt,
  type Target,
} from "./core.ts";
import { endpointOptions } from "./endpoints.ts";
import { HostKeyChangedError } from "./pins.ts";
import { SeenMessages } from "./seen.ts";

export interface LinkHooks {
  /** A line for the user: "connection lost, retrying in 2 s", "reconnected". */
  status(text: string): void;
  /** Every push from the server, in order. */
  event(message: Message): void | Promise<void>;
  /** The waits before each resend of a message the server failed to store (tests shorten them). */
  failedSendWaitsMs?: readonly number[];
}

/** Delays between reconnection attempts, in ms; the last one repeats. */
export const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];

/**
 * A message whose sending ended with the connection closing this many times is given up. Once
 * is a network drop, and the resend (same id) fixes it; twice for the same message means the
 * server most likely closes the connection because of it, and resending it forever would loop.
 */
export const MAX_SENDS_LOST = 2;

/**
 * A message the server failed to store (INTERNAL: a cluster's store while a NATS server dies, or
 * while JetStream elects leaders after a majority came back, which took 20 s), or refused because
 * the node is stopping, is sent again after each of these waits, about half a minute in all.
 * Same id: a copy that was stored after all reaches the recipient twice and is shown once
 * (SeenMessages).
 */
export const FAILED_SEND_WAITS_MS: readonly number[] = [1000, 2000, 4000, 8000, 15000];

/**
 * A message refused for the connection's request rate (a long paste) waits this long and is sent
 * again, up to MAX_RATE_LIMITED times: the sends before it go on in order, one refusal a second
 * at most, far from the refusals that make the server close a flooding connection.
 */
export const RATE_LIMITED_WAIT_MS = 1000;
export const MAX_RATE_LIMITED = 60;

/** Errors after which the same message may be sent again (see FAILED_SEND_WAITS_MS). */
function worthRetrying(e: unknown): boolean {
  return e instanceof ParleyError &&
    (e.code === ErrorCode.INTERNAL || e.code === ErrorCode.SHUTTING_DOWN);
}

/** A message was given up after the connection closed under it MAX_SENDS_LOST times. */
export class SendGivenUpError extends Error {
  override name = "SendGivenUpError";
}

export class Link {
  #client: ParleyClient | null = null;
  #ready: Promise<ParleyClient | null>;
  #setReady!: (c: ParleyClient | null) => void;
  #closing = false;
  /** The index, among the server's addresses, of the current (or last) connection's. */
  #at = 0;
  #ended: string | null = null;
  readonly seen: SeenMessages;
  /** Resolves with the reason once the link gives up for good (kicked, token refused, closed). */
  readonly ended: Promise<string>;
  #end!: (reason: string) => void;

  constructor(private readonly opts: ConnectOptions, private readonly hooks: LinkHooks) {
    this.seen = opts.seen ?? new SeenMessages();
    this.#ready = new Promise((r) => this.#setReady = r);
    this.ended = new Promise((r) => this.#end = r);
  }

  get client(): ParleyClient | null {
    return this.#client;
  }

  /**
   * Takes the first connection, logged in; afterwards the link keeps itself up. `at` is the
   * index of its address among endpointOptions(opts) (connectFirst tells it).
   */
  open(client: ParleyClient, at = 0): void {
    this.#at = at;
    this.#use(client);
  }

  #use(client: ParleyClient): void {
    this.#client = client;
    this.#setReady(client);
    // Registered before anyone can wait on `closed` in live(), so it runs first.
    void client.closed.then(() => this.#lost(client));
    void this.#pump(client);
  }

  /** The connection is gone: callers of live() wait for the next one from now on. */
  #lost(client: ParleyClient): void {
    if (this.#client !== client || this.#ended !== null) return;
    this.#client = null;
    this.#ready = new Promise((r) => this.#setReady = r);
  }

  async #pump(client: ParleyClient): Promise<void> {
    for await (const m of client.events()) {
      try {
        await this.hooks.event(m);
      } catch (e) {
        // One push the application cannot handle must not end the session (or, unacknowledged,
        // end every session after it): it is reported and the pump goes on.
        this.hooks.status(
          `Could not handle a ${msgTypeName(m.type)} from the server: ${(e as Error).message}`,
        );
      }
    }
    const reason = await client.closed;
    if (this.#closing) return this.#finish("Closed");
    if (reason.startsWith("Kicked")) return this.#finish(reason);
    await this.#reconnect(client, reason);
  }

  /**
   * Backoff as with one address; each attempt tries every address of the server, from the one
   * after the lost connection's (another node of a cluster) round to that one again.
   */
  async #reconnect(previous: ParleyClient, reason: string): Promise<void> {
    const token = previous.token;
    if (!token) return this.#finish(`${reason}; log in again`);
    const endpoints = endpointOptions({ ...this.opts, seen: this.seen });
    for (let attempt = 0; !this.#closing; attempt++) {
      const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      this.hooks.status(`${attempt === 0 ? reason + ". " : ""}Reconnecting in ${delay / 1000} s…`);
      await new Promise((r) => setTimeout(r, delay));
      for (let i = 1; i <= endpoints.length && !this.#closing; i++) {
        const at = (this.#at + i) % endpoints.length;
        let next: ParleyClient | null = null;
        try {
          next = await ParleyClient.connect(endpoints[at]);
          await next.resume(token, previous.lastWorldId);
        } catch (e) {
          next?.close();
          // A node with another key is refused as a single server is, never skipped quietly.
          if (e instanceof HostKeyChangedError) return this.#finish(e.message);
          // The nodes of a cluster share their tokens: one refusing it speaks for all.
          if (e instanceof ParleyError && e.code === ErrorCode.BAD_TOKEN) {
            return this.#finish("The server no longer accepts this session; log in again");
          }
          continue;
        }
        this.#at = at;
        this.hooks.status(
          endpoints.length > 1 ? `Reconnected to ${next.address}.` : "Reconnected.",
        );
        this.#use(next);
        return;
      }
    }
    this.#finish("Closed");
  }

  #finish(reason: string): void {
    if (this.#ended !== null) return;
    this.#ended = reason;
    this.#client = null;
    this.#setReady(null);
    this.#end(reason);
  }

  /** The live client, waiting for a reconnection if need be; null once the link has ended. */
  async live(): Promise<ParleyClient | null> {
    while (this.#ended === null) {
      const c = this.#client ?? await this.#ready;
      if (c === null) return null;
      if (!c.isClosed) return c;
      // Closing right now: once `closed` settles, #lost has made way for the next connection.
      await c.closed;
    }
    return null;
  }

  /** Sends text, across reconnections, until the server acknowledges it or the link ends. */
  async sendText(to: Target, text: string): Promise<SentReceipt> {
    return await this.#retry((c, id) => c.sendText(to, text, id));
  }

  async sendImage(to: Target, image: Uint8Array, name?: string): Promise<SentReceipt> {
    return await this.#retry((c, id) => c.sendImage(to, image, name, id));
  }

  async #retry(
    send: (c: ParleyClient, id: Uint8Array) => Promise<SentReceipt>,
  ): Promise<SentReceipt> {
    const id = newMessageId();
    for (let lost = 0, failed = 0, limited = 0; lost < MAX_SENDS_LOST;) {
      const c = await this.live();
      if (!c) throw new ConnectionClosedError(this.#ended ?? "Disconnected");
      try {
        return await send(c, id);
      } catch (e) {
        const waits = this.hooks.failedSendWaitsMs ?? FAILED_SEND_WAITS_MS;
        if (worthRetrying(e) && failed < waits.length) {
          await new Promise((r) => setTimeout(r, waits[failed++]));
          continue;
        }
        if (
          e instanceof ParleyError && e.code === ErrorCode.RATE_LIMITED &&
          ++limited <= MAX_RATE_LIMITED
        ) {
          await new Promise((r) => setTimeout(r, RATE_LIMITED_WAIT_MS));
          continue;
        }
        if (!(e instanceof ConnectionClosedError)) throw e;
        // Lost with the connection: send again, same id, once the link is back.
        lost++;
      }
    }
    throw new SendGivenUpError(
      `the connection closed each of the ${MAX_SENDS_LOST} times it was sent, so it was given up`,
    );
  }

  /** Resolves when the current connection is down (at once if it is down now). */
  down(): Promise<void> {
    const c = this.#client;
    if (!c || c.isClosed || this.#ended !== null) return Promise.resolve();
    return c.closed.then(() => {});
  }

  ack(seq: number): void {
    this.#client?.ack(seq);
  }

  /** Resolves once what was sent so far (acknowledgements included) has left, or at once if down. */
  async flush(): Promise<void> {
    await this.#client?.flush();
  }

  /** Ends the connection as ParleyClient.finish does; the link then stays down. */
  async finish(ms: number): Promise<void> {
    this.#closing = true;
    await this.#client?.finish(ms);
    this.close();
  }

  close(): void {
    this.#closing = true;
    this.#client?.close();
    this.#finish("Closed");
  }
}
