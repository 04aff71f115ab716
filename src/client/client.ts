/**
 * The client library used by the CLI and the tests: connect and handshake, pin the server's
 * key, match responses to requests by id, and hand out server pushes as an async iterator.
 */

import { fingerprint } from "../crypto/keys.ts";
import { ErrorCode, ParleyError, SchemaError } from "../protocol/errors.ts";
import type { Message } from "../protocol/message_codec.ts";
import { FAILURE_TYPES, MsgType, msgTypeName, ServerBody } from "../protocol/messages.ts";
import type { Schema } from "../protocol/schema.ts";
import type { Value } from "../protocol/value.ts";
import { Channel } from "../transport/channel.ts";
import { initiateHandshake } from "../transport/handshake_io.ts";
import { HostKeyChangedError, type KnownHosts } from "./known_hosts.ts";

export interface ConnectOptions {
  host: string;
  port: number;
  /** Where pinned server keys live; null skips pinning (tests of the transport only). */
  knownHosts: KnownHosts | null;
  /** Asked on first contact with a server; return false to refuse its key. Default: accept. */
  onFirstContact?: (fingerprint: string) => boolean | Promise<boolean>;
  /** Connect plus handshake deadline. */
  timeoutMs?: number;
  maxFrameBytes?: number;
  /** Protocol version to offer (tests use this to see a refusal). */
  protocolVersion?: number;
}

/** The connection ended; pending requests fail with this. */
export class ConnectionClosedError extends Error {
  override name = "ConnectionClosedError";
}

export interface LoginResult {
  username: string;
  /** Present after a password login; a resume reuses the token it was given. */
  token: Uint8Array | null;
  expires: Date;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_FRAME = 1024 * 1024;
const MAX_ID = 0xffff_ffff;

export class ParleyClient {
  readonly #channel: Channel;
  readonly #opts: ConnectOptions;
  /** The latest resume token this client was given, for reconnect(). */
  #token: Uint8Array | null = null;
  readonly #pending = new Map<
    number,
    { resolve: (m: Message) => void; reject: (e: Error) => void }
  >();
  readonly #events: Message[] = [];
  readonly #waiters = new Set<() => void>();
  #nextId = 1;
  #closeReason: string | null = null;
  readonly closed: Promise<string>;
  /** The server identity key's fingerprint. */
  readonly fingerprint: string;
  /** True when this connection pinned the server's key for the first time. */
  readonly firstContact: boolean;

  private constructor(
    channel: Channel,
    opts: ConnectOptions,
    print: string,
    firstContact: boolean,
  ) {
    this.#channel = channel;
    this.#opts = opts;
    this.fingerprint = print;
    this.firstContact = firstContact;
    this.closed = this.#readLoop();
  }

  static async connect(opts: ConnectOptions): Promise<ParleyClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME;
    const addr = `${opts.host}:${opts.port}`;
    const conn = await withTimeout(
      Deno.connect({ hostname: opts.host, port: opts.port }),
      timeoutMs,
      `Connecting to ${addr} timed out`,
    );
    try {
      const shaken = await withTimeout(
        initiateHandshake(conn, maxFrameBytes, opts.protocolVersion),
        timeoutMs,
        `The handshake with ${addr} timed out`,
      );
      const print = fingerprint(shaken.serverIdentity);
      let firstContact = false;
      if (opts.knownHosts) {
        const pinned = await opts.knownHosts.lookup(addr);
        if (pinned && !equalBytes(pinned, shaken.serverIdentity)) {
          throw new HostKeyChangedError(
            `The server at ${addr} presented identity key ${print}, but the key pinned on first ` +
              `contact is ${fingerprint(pinned)}. Someone may be intercepting the connection, or ` +
              `the server's operator replaced its key. If you trust the change, remove the line ` +
              `for ${addr} from ${opts.knownHosts.path}.`,
          );
        }
        if (!pinned) {
          if (opts.onFirstContact && !await opts.onFirstContact(print)) {
            throw new HostKeyChangedError(`The key ${print} of ${addr} was not accepted`);
          }
          await opts.knownHosts.remember(addr, shaken.serverIdentity);
          firstContact = true;
        }
      }
      const channel = new Channel(conn, shaken.keys, shaken.decoder, {
        maxFrameBytes,
        maxOutboundBytes: 64 * 1024 * 1024,
        maxDepth: 32,
      });
      return new ParleyClient(channel, opts, print, firstContact);
    } catch (e) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      throw e;
    }
  }

  async #readLoop(): Promise<string> {
    let reason = "The server closed the connection";
    try {
      for await (const { messages, error } of this.#channel.incoming()) {
        for (const msg of messages) this.#receive(msg);
        if (error) throw error.cause;
      }
    } catch (e) {
      reason = `Connection failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    this.#closeReason ??= reason;
    this.#channel.close();
    for (const { reject } of this.#pending.values()) {
      reject(new ConnectionClosedError(this.#closeReason));
    }
    this.#pending.clear();
    this.#wakeAll();
    return this.#closeReason;
  }

  #receive(msg: Message): void {
    if (msg.type === MsgType.PING) {
      this.#channel.send(MsgType.PONG, msg.id, msg.body);
      return;
    }
    const waiter = msg.id !== 0 ? this.#pending.get(msg.id) : undefined;
    if (waiter) {
      this.#pending.delete(msg.id);
      waiter.resolve(msg);
      return;
    }
    if (msg.type === MsgType.KICK) {
      const body = msg.body as { reason?: unknown };
      this.#closeReason = `Kicked: ${
        typeof body?.reason === "string" ? body.reason : "logged in elsewhere"
      }`;
    }
    this.#events.push(msg);
    this.#wakeAll();
  }

  /** Sends a request and resolves with whatever the server answers, failure or not. */
  request(type: number, body: Value): Promise<Message> {
    if (this.#channel.closed) {
      return Promise.reject(
        new ConnectionClosedError(this.#closeReason ?? "The connection is closed"),
      );
    }
    const id = this.#nextId;
    this.#nextId = this.#nextId >= MAX_ID ? 1 : this.#nextId + 1;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#channel.send(type, id, body);
      } catch (e) {
        this.#pending.delete(id);
        reject(e);
      }
    });
  }

  /** Sends a request; returns the response body, or throws ParleyError for a failure reply. */
  async call(type: number, body: Value, expect?: number): Promise<Value> {
    const reply = await this.request(type, body);
    if (FAILURE_TYPES.has(reply.type)) {
      const fail = checked(reply);
      throw new ParleyError(fail.code as number, fail.message as string);
    }
    if (expect !== undefined && reply.type !== expect) {
      throw new ParleyError(
        ErrorCode.BAD_REQUEST,
        `Expected ${msgTypeName(expect)} in reply to ${msgTypeName(type)}, got ${
          msgTypeName(reply.type)
        }`,
      );
    }
    return checked(reply);
  }

  async register(username: string, password: string): Promise<string> {
    const body = await this.call(MsgType.REGISTER, [username, password], MsgType.REG_OK);
    return (body as { username: string }).username;
  }

  async login(username: string, password: string): Promise<LoginResult> {
    const result = toLogin(await this.call(MsgType.LOGIN, [username, password], MsgType.LG_OK));
    this.#token = result.token;
    return result;
  }

  async resume(token: Uint8Array): Promise<LoginResult> {
    const result = toLogin(await this.call(MsgType.RESUME, token, MsgType.LG_OK));
    this.#token = token;
    return result;
  }

  /** The resume token of this client's login, if it has one. */
  get token(): Uint8Array | null {
    return this.#token;
  }

  /**
   * Opens a new connection to the same server and logs in again with the resume token, with no
   * password and no slow hash: for after a network drop or a server restart.
   */
  async reconnect(): Promise<ParleyClient> {
    if (!this.#token) throw new ParleyError(ErrorCode.BAD_TOKEN, "No resume token: log in first");
    this.close();
    const next = await ParleyClient.connect(this.#opts);
    try {
      await next.resume(this.#token);
    } catch (e) {
      next.close();
      throw e;
    }
    return next;
  }

  async logout(): Promise<void> {
    await this.call(MsgType.LOGOUT, null, MsgType.OK);
    this.#token = null;
  }

  /** Changes the password; every other resume token ends, and a fresh one is returned. */
  async changePassword(oldPassword: string, newPassword: string): Promise<LoginResult> {
    const body = await this.call(
      MsgType.CHANGE_PASSWORD,
      [oldPassword, newPassword],
      MsgType.OK,
    ) as {
      token: Uint8Array;
      expires: Date;
    };
    return { username: "", token: body.token, expires: body.expires };
  }

  /** Round trip time of a PING, in milliseconds. */
  async ping(): Promise<number> {
    const start = performance.now();
    await this.call(MsgType.PING, null, MsgType.PONG);
    return performance.now() - start;
  }

  #wakeAll(): void {
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.add(resolve));
  }

  /** Server pushes (id 0) and unmatched messages, in arrival order; ends when the connection does. */
  async *events(): AsyncGenerator<Message> {
    while (true) {
      const next = this.#events.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#channel.closed) return;
      await this.#changed();
    }
  }

  /** Takes the first push of `type`, leaving other pushes queued; throws if none comes in time. */
  async nextEvent(type: number, timeoutMs = 10_000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const at = this.#events.findIndex((m) => m.type === type);
      if (at >= 0) return this.#events.splice(at, 1)[0];
      if (this.#channel.closed) {
        throw new ConnectionClosedError(this.#closeReason ?? "The connection closed");
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`No ${msgTypeName(type)} within ${timeoutMs} ms`);
      await withTimeout(this.#changed(), left, `No ${msgTypeName(type)} within ${timeoutMs} ms`);
    }
  }

  get isClosed(): boolean {
    return this.#channel.closed;
  }

  close(): void {
    this.#closeReason ??= "Closed by the client";
    this.#channel.close();
  }
}

function checked(msg: Message): { [key: string]: Value } {
  const schema = (ServerBody as Record<number, Schema<unknown>>)[msg.type];
  try {
    return (schema ? schema.check(msg.body, "") : msg.body) as { [key: string]: Value };
  } catch (e) {
    if (e instanceof SchemaError) {
      throw new ParleyError(
        ErrorCode.BAD_REQUEST,
        `The server sent a malformed ${msgTypeName(msg.type)}: ${e.message}`,
      );
    }
    throw e;
  }
}

function toLogin(body: Value): LoginResult {
  const b = body as { username: string; token?: Uint8Array; expires: Date };
  return { username: b.username, token: b.token ?? null, expires: b.expires };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
