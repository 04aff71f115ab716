/**
 * The load generator's chat client: the same handshake, frames and encryption as ParleyClient
 * (it uses the same transport code), but none of its per-message promises, duplicate filter or
 * event queue. The load processes share the benchmark machine's two cores with the server, so
 * every microsecond they spend per message is taken from the server under test.
 */

import { CumulativeAck } from "../src/client/acks.ts";
import type { Target } from "../src/client/client.ts";
import { MsgType } from "../src/protocol/messages.ts";
import type { Message } from "../src/protocol/message_codec.ts";
import type { Value } from "../src/protocol/value.ts";
import { Channel } from "../src/transport/channel.ts";
import { initiateHandshake } from "../src/transport/handshake_io.ts";
import { TcpTransport } from "../src/transport/tcp.ts";

const MAX_FRAME_BYTES = 4 * 1024 * 1024;
const SETUP_TIMEOUT_MS = 10_000;

/** `p`, or an error if it takes longer than the setup may (or `ms`). */
export function withTimeout<T>(p: Promise<T>, what: string, ms = SETUP_TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Random bytes drawn a few KiB at a time: one call to the system's generator per 256 ids. Each
 * id is a view of its pool (a used-up pool is replaced, never refilled), which is cheaper than a
 * buffer per id. Only the bench may do this: it sends the ids and keeps none, whereas an
 * application that stored one would store the pool with it (the client library's newMessageId
 * gives ids of their own).
 */
let randomPool = new Uint8Array(4096);
let randomUsed = randomPool.length;

/** A fresh message id: 16 random bytes, as a view of a shared pool. */
export function pooledMessageId(): Uint8Array {
  if (randomUsed + 16 > randomPool.length) {
    randomPool = crypto.getRandomValues(new Uint8Array(4096));
    randomUsed = 0;
  }
  const id = randomPool.subarray(randomUsed, randomUsed + 16);
  randomUsed += 16;
  return id;
}

export class BenchClient {
  readonly #channel: Channel;
  #nextId = 1;
  /** Requests other than SEND (only the login), by request id. */
  readonly #waiting = new Map<number, (reply: Message) => void>();
  /** Request ids of SENDs not yet answered. */
  readonly #sends = new Set<number>();
  readonly #acks = new CumulativeAck((seq) => this.#channel.send(MsgType.ACK, 0, seq));
  /** Each PASS body, as it arrives; it is acknowledged for you. */
  onPass: (body: { [key: string]: Value }) => void = () => {};
  /**
   * Each SEND's answer: true for SENT, false for a failure; `skipped`, the group members whose
   * queue was full and who did not get the message (SENT's `skipped`).
   */
  onSent: (ok: boolean, skipped: number) => void = () => {};
  readonly closed: Promise<void>;

  private constructor(channel: Channel) {
    this.#channel = channel;
    this.closed = channel.receive(({ messages, error }) => {
      for (const m of messages) this.#receive(m);
      if (error) throw error.cause; // a malformed frame from the server ends the connection
    }).catch(() => {}).finally(() => {
      this.#acks.stop();
      channel.close();
      // Whatever still waits hears the connection is gone.
      for (const w of this.#waiting.values()) w({ type: MsgType.GENERAL_ERROR, id: 0, body: null });
      for (const _ of this.#sends) this.onSent(false, 0);
      this.#waiting.clear();
      this.#sends.clear();
    });
  }

  static async connect(host: string, port: number): Promise<BenchClient> {
    const conn = await withTimeout(
      Deno.connect({ hostname: host, port }),
      `Connecting to ${host}:${port}`,
    );
    const transport = new TcpTransport(conn);
    try {
      const { keys, decoder } = await withTimeout(
        initiateHandshake(transport, MAX_FRAME_BYTES),
        `The handshake with ${host}:${port}`,
      );
      return new BenchClient(
        new Channel(transport, keys, decoder, {
          maxFrameBytes: MAX_FRAME_BYTES,
          maxOutboundBytes: 64 * 1024 * 1024,
          maxDepth: 32,
        }),
      );
    } catch (e) {
      transport.close();
      throw e;
    }
  }

  async login(username: string, password: string): Promise<void> {
    const id = this.#id();
    const reply = await withTimeout(
      new Promise<Message>((resolve) => {
        this.#waiting.set(id, resolve);
        this.#channel.send(MsgType.LOGIN, id, [username, password]);
      }),
      `The login of ${username}`,
    );
    if (reply.type !== MsgType.LG_OK) {
      const body = reply.body as { message?: string } | null;
      throw new Error(`Login of ${username} failed: ${body?.message ?? "connection closed"}`);
    }
  }

  /** Sends a text message; its answer comes to onSent (a failure, once the connection is gone). */
  send(to: Target, text: string): void {
    if (this.#channel.closed) {
      queueMicrotask(() => this.onSent(false, 0));
      return;
    }
    const body: { [key: string]: Value } = { id: pooledMessageId(), type: "text", data: text };
    if ("user" in to) body.target_username = to.user;
    else if ("group" in to) body.group_id = to.group;
    else body.world = true;
    const id = this.#id();
    this.#sends.add(id);
    this.#channel.send(MsgType.SEND, id, body);
  }

  close(): void {
    this.#acks.stop();
    this.#channel.close();
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0xffff_ffff ? 1 : id + 1;
    return id;
  }

  #receive(m: Message): void {
    if (m.type === MsgType.PING) {
      this.#channel.send(MsgType.PONG, m.id, m.body);
      return;
    }
    if (m.id !== 0) {
      if (this.#sends.delete(m.id)) {
        const skipped = m.type === MsgType.SENT
          ? (m.body as { skipped?: unknown } | null)?.skipped
          : undefined;
        this.onSent(m.type === MsgType.SENT, Array.isArray(skipped) ? skipped.length : 0);
        return;
      }
      const waiter = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      waiter?.(m);
      return;
    }
    if (m.type === MsgType.PASS) {
      const body = m.body as { [key: string]: Value };
      if (typeof body.seq === "number" && body.seq > 0) this.#acks.ack(body.seq);
      this.onPass(body);
    }
  }
}
