/** A hand-driven client for transport tests: real handshake, then frames crafted by the test. */

import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import { ed25519KeyPair } from "../../src/crypto/keys.ts";
import { decodeMessages, encodeMessages, type Message } from "../../src/protocol/message_codec.ts";
import type { FrameDecoder } from "../../src/protocol/frame.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { acceptHandshake, initiateHandshake } from "../../src/transport/handshake_io.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { writeAll } from "../../src/transport/transport.ts";

export class RawClient {
  readonly sealer: FrameSealer;
  readonly opener: FrameOpener;

  private constructor(
    readonly conn: Deno.Conn,
    keys: { send: Uint8Array; receive: Uint8Array },
    readonly decoder: FrameDecoder,
  ) {
    this.sealer = new FrameSealer(keys.send);
    this.opener = new FrameOpener(keys.receive);
  }

  static async connect(port: number): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const { keys, decoder } = await initiateHandshake(new TcpTransport(conn), 1024 * 1024);
    return new RawClient(conn, keys, decoder);
  }

  /**
   * A raw client logged in as a new account `name`: REGISTER and LOGIN, read up to INITIALIZE.
   * Before login a server closes a connection that misbehaves; tests of what a logged-in one
   * may do start here.
   */
  static async loggedIn(port: number, name: string): Promise<RawClient> {
    const raw = await RawClient.connect(port);
    const password = "password-" + name;
    await raw.send(raw.frame([
      { type: MsgType.REGISTER, id: 1, body: [name, password] },
      { type: MsgType.LOGIN, id: 2, body: [name, password] },
    ]));
    while (true) {
      const messages = await raw.receive();
      if (messages === null) throw new Error(`The server closed the connection of ${name}`);
      const failed = messages.find((m) =>
        m.type === MsgType.REG_FAIL || m.type === MsgType.LG_FAIL
      );
      if (failed) throw new Error(`Could not log in ${name}: ${JSON.stringify(failed.body)}`);
      if (messages.some((m) => m.type === MsgType.INITIALIZE)) return raw;
    }
  }

  /** Seals messages into the next frame (without sending it). */
  frame(messages: Message[]): Uint8Array {
    return this.sealer.seal(encodeMessages(messages));
  }

  send(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** The messages of the next frame, or null when the server closed the connection. */
  async receive(timeoutMs = 5000): Promise<Message[] | null> {
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const frame = this.decoder.readFrame();
      if (frame) return decodeMessages(this.opener.open(frame)).messages;
      const n = await readWithin(this.conn, buf, deadline - Date.now());
      if (n === null) return null;
      this.decoder.push(buf.subarray(0, n));
    }
    throw new Error("No frame and no close within the time limit");
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
  }
}

/** conn.read with a deadline; null on EOF or reset. Throws if neither data nor close came. */
export async function readWithin(
  conn: Deno.Conn,
  buf: Uint8Array,
  ms: number,
): Promise<number | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      conn.read(buf).catch((e) => {
        if (e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BadResource) {
          return null;
        }
        throw e;
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("The server neither sent nor closed in time")),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads until the peer closes; returns the bytes seen. Throws if it stays open past `ms`. */
export async function readUntilClosed(conn: Deno.Conn, ms: number): Promise<number> {
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + ms;
  let total = 0;
  while (true) {
    const n = await readWithin(conn, buf, deadline - Date.now());
    if (n === null) return total;
    total += n;
  }
}

/** Every message the server sends `raw` until it closes the connection (or `ms` pass). */
export async function receiveAll(raw: RawClient, ms = 10_000): Promise<Message[]> {
  const all: Message[] = [];
  const deadline = Date.now() + ms;
  while (true) {
    const frame = await raw.receive(deadline - Date.now());
    if (frame === null) return all;
    all.push(...frame);
  }
}

/**
 * The server's side of one connection, driven by hand in a test: accepted on `listener`, the
 * handshake done with a fresh identity, and a sealer and opener for its frames.
 */
export async function acceptSealed(listener: Deno.Listener) {
  const conn = await listener.accept();
  const { keys, decoder } = await acceptHandshake(
    new TcpTransport(conn),
    ed25519KeyPair(),
    1 << 20,
  );
  return {
    conn,
    decoder,
    sealer: new FrameSealer(keys.send),
    opener: new FrameOpener(keys.receive),
  };
}
