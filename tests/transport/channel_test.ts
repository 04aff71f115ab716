/**
 * Channel against a real loopback socket (what the peer gets when a send fails part-way), and
 * against scripted connections (read buffers shared between channels).
 */

import assert from "node:assert/strict";
import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import { decodeMessages, encodeMessages } from "../../src/protocol/message_codec.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import type { Value } from "../../src/protocol/value.ts";
import { Channel } from "../../src/transport/channel.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { ConnectionGone, type Transport } from "../../src/transport/transport.ts";
import { concat } from "../helpers/bytes.ts";

const SEND_KEY = new Uint8Array(32).fill(3);
const RECEIVE_KEY = new Uint8Array(32).fill(4);

Deno.test("a message that fails to encode leaves nothing behind; the messages around it arrive", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await listener.accept();
  listener.close();
  const channel = new Channel(
    new TcpTransport(server),
    { send: SEND_KEY, receive: RECEIVE_KEY },
    new FrameDecoder(1 << 20),
    { maxFrameBytes: 1 << 20, maxOutboundBytes: 1 << 24, maxDepth: 16 },
  );
  try {
    channel.send(1, 1, "before");
    // A dict whose second field cannot be encoded: its first field is already written by then.
    const bad = { fine: "x".repeat(100), broken: Symbol("no") } as unknown as Value;
    assert.throws(() => channel.send(1, 2, bad), TypeError);
    channel.send(1, 3, "after");
    await channel.flush();

    const decoder = new FrameDecoder(1 << 20);
    const opener = new FrameOpener(SEND_KEY);
    const buf = new Uint8Array(4096);
    let frame = decoder.readFrame();
    while (!frame) {
      const n = await client.read(buf);
      assert.ok(n !== null, "the channel closed the connection");
      decoder.push(buf.subarray(0, n));
      frame = decoder.readFrame();
    }
    const { messages, error } = decodeMessages(opener.open(frame));
    assert.equal(error, undefined);
    assert.deepEqual(messages.map((m) => [m.id, m.body]), [[1, "before"], [3, "after"]]);
  } finally {
    channel.close();
    client.close();
  }
});

/** A connection whose reads are scripted: each step fills the buffer it is given, then it blocks. */
class ScriptedConn implements Transport {
  readonly peer = { hostname: "scripted", port: 1 };
  #steps: ((buf: Uint8Array) => number)[];
  #blocked: ((n: null) => void) | null = null;
  constructor(steps: ((buf: Uint8Array) => number)[]) {
    this.#steps = steps;
  }
  /** The size of the buffer each read was given. */
  readonly sizes: number[] = [];
  read(buf: Uint8Array): Promise<number | null> {
    this.sizes.push(buf.length);
    const step = this.#steps.shift();
    if (step) return Promise.resolve(step(buf));
    return new Promise((resolve) => this.#blocked = resolve);
  }
  write(buf: Uint8Array): Promise<number> {
    return Promise.resolve(buf.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.#blocked?.(null); // the peer is gone
  }
  isGone(error: unknown): boolean {
    return error instanceof ConnectionGone;
  }
}

function scripted(conn: ScriptedConn): Channel {
  return new Channel(
    conn,
    { send: RECEIVE_KEY, receive: SEND_KEY },
    new FrameDecoder(1 << 20),
    { maxFrameBytes: 1 << 20, maxOutboundBytes: 1 << 24, maxDepth: 16 },
  );
}

Deno.test("frames opened in place survive another channel reusing a pooled read buffer", async () => {
  // A read that fills the small buffer moves the channel to a big one from a shared pool; the big
  // one goes back when a read does not fill it. It must not go back while whole frames in it
  // wait behind a slow handler: another channel would read into it, and they would fail.
  const sealer = new FrameSealer(SEND_KEY);
  const frame = (id: number, text: string) =>
    sealer.seal(encodeMessages([{ type: 1, id, body: text }]));
  const stream = concat(frame(1, "a".repeat(1000)), frame(2, "second"), frame(3, "third"));
  const slow = scripted(
    new ScriptedConn([
      (buf) => (buf.set(stream.subarray(0, buf.length)), buf.length), // fills the small buffer
      (buf) => (buf.set(stream.subarray(256)), stream.length - 256), // the rest, in a big one
    ]),
  );
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const got: Value[] = [];
  const slowDone = slow.receive(async ({ messages }) => {
    got.push(...messages.map((m) => m.body));
    if (got.length === 1) await gate; // frames 2 and 3 wait in the big buffer
  }).then(() => null, (e) => e);
  while (got.length === 0) await new Promise((r) => setTimeout(r, 1));

  // Another channel fills its small buffer, takes a big one from the pool and reads into it.
  let scribbled = false;
  const other = scripted(
    new ScriptedConn([
      (buf) => (buf.set([0, 0, 16, 0]), buf.length), // a frame header: 4096 bytes to come
      (buf) => (buf.fill(0xee), scribbled = true, 16),
    ]),
  );
  const otherDone = other.receive(() => {});
  while (!scribbled) await new Promise((r) => setTimeout(r, 1));

  release();
  while (got.length < 3) {
    const failed = await Promise.race([slowDone, new Promise((r) => setTimeout(r, 1))]);
    if (failed) throw failed;
  }
  assert.deepEqual(got, ["a".repeat(1000), "second", "third"]);
  slow.close();
  other.close();
  assert.equal(await slowDone, null);
  await otherDone;
});

Deno.test("a connection that goes quiet after a read that filled its buffer parks on the small one", async () => {
  const sealer = new FrameSealer(SEND_KEY);
  const frame = (body: string) => sealer.seal(encodeMessages([{ type: 1, id: 1, body }]));
  // One whole frame of exactly the small buffer's size, then nothing: stay on 256 bytes.
  const whole = frame("w".repeat(256 - 4 - 16 - 13));
  assert.equal(whole.length, 256);
  const quietConn = new ScriptedConn([(buf) => (buf.set(whole), whole.length)]);
  let got = 0;
  const quiet = scripted(quietConn);
  const quietDone = quiet.receive(({ messages }) => void (got += messages.length));
  while (quietConn.sizes.length < 2) await new Promise((r) => setTimeout(r, 1));
  assert.equal(got, 1);
  assert.deepEqual(quietConn.sizes, [256, 256]);
  quiet.close();
  await quietDone;

  // A read that filled the buffer with part of a frame: the rest comes in a big buffer.
  const partial = frame("p".repeat(1000));
  const busyConn = new ScriptedConn([(buf) => (buf.set(partial.subarray(0, 256)), 256)]);
  const busy = scripted(busyConn);
  const busyDone = busy.receive(() => {});
  while (busyConn.sizes.length < 2) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(busyConn.sizes, [256, 16 * 1024]);
  busy.close();
  await busyDone;
});

Deno.test("a frame's plaintext is wiped from the read buffer once its messages are decoded", async () => {
  const sealer = new FrameSealer(SEND_KEY);
  const secret = "correct horse battery staple";
  const sealed = sealer.seal(encodeMessages([{ type: 2, id: 1, body: ["alice", secret] }]));
  const buffers: Uint8Array[] = [];
  const conn = new ScriptedConn([(buf) => (buffers.push(buf), buf.set(sealed), sealed.length)]);
  const channel = scripted(conn);
  let body: Value = null;
  const done = channel.receive(({ messages }) => void (body = messages[0].body));
  while (conn.sizes.length < 2) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(body, ["alice", secret], "the message itself arrives whole");
  const left = new TextDecoder("latin1").decode(buffers[0]);
  assert.ok(!left.includes(secret), "the password is still in the read buffer");
  assert.ok(!left.includes("alice"));
  channel.close();
  await done;
});
