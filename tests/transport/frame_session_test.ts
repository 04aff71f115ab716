/**
 * The frame session (handshake, then Channel) over a transport: the same tests on an in-memory
 * pair and on loopback TCP, then the ones that need the pair's controls (a pipe that fills, a
 * peer that is gone) on the pair alone. The stall and finish timers run on a ManualClock, so
 * nothing here sleeps.
 */

import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { ManualClock } from "../../src/clock/clock.ts";
import { FrameSealer } from "../../src/crypto/cipher.ts";
import { ed25519KeyPair } from "../../src/crypto/keys.ts";
import { FrameAuthError, FrameSizeError, HandshakeError } from "../../src/protocol/errors.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { encodeMessages, type Message } from "../../src/protocol/message_codec.ts";
import type { Value } from "../../src/protocol/value.ts";
import {
  Channel,
  type ChannelOptions,
  COALESCE_BYTES,
  OUTBOUND_STALL_BYTES,
  SlowReaderError,
} from "../../src/transport/channel.ts";
import { acceptHandshake, initiateHandshake } from "../../src/transport/handshake_io.ts";
import { memoryPair, type MemoryTransport } from "../../src/transport/memory.ts";
import { OutboundTotal } from "../../src/transport/outbound_total.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { ConnectionGone, type Transport, writeAll } from "../../src/transport/transport.ts";

const MAX_FRAME = 1 << 20;

/** One turn of the event loop: the channels seal and write at the end of a turn. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Lets turns pass until `done()` holds (socket I/O included); fails rather than hanging. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!done() && performance.now() < deadline) await settle();
  assert.ok(done(), `still waiting for ${what}`);
}

type Kind = "memory" | "tcp";

/** A connected [client, server] pair of transports of the given kind. */
async function transports(kind: Kind, capacity?: number): Promise<[Transport, Transport]> {
  if (kind === "memory") return memoryPair({ capacity });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const [client, server] = await Promise.all([
      Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
      listener.accept(),
    ]);
    return [new TcpTransport(client), new TcpTransport(server)];
  } finally {
    listener.close();
  }
}

/** The memory end of a session made with kind "memory". */
const memory = (t: Transport) => t as MemoryTransport;

interface Session {
  server: Channel;
  client: Channel;
  serverEnd: Transport;
  clientEnd: Transport;
  /** The server channel's clock; the client's is the system's, and it has no stall deadline. */
  clock: ManualClock;
  /** Faults the server channel reported. */
  faults: Error[];
}

/** A handshake over a fresh pair of transports (memory by default), then a channel on each end. */
async function connect(
  options: { kind?: Kind; capacity?: number; server?: Partial<ChannelOptions> } = {},
): Promise<Session> {
  const [clientEnd, serverEnd] = await transports(options.kind ?? "memory", options.capacity);
  const identity = ed25519KeyPair();
  const [accepted, initiated] = await Promise.all([
    acceptHandshake(serverEnd, identity, MAX_FRAME),
    initiateHandshake(clientEnd, MAX_FRAME),
  ]);
  assert.deepEqual(initiated.serverIdentity, identity.publicKey);
  const clock = new ManualClock(1000);
  const base = { maxFrameBytes: MAX_FRAME, maxOutboundBytes: 1 << 24, maxDepth: 16 };
  const server = new Channel(serverEnd, accepted.keys, accepted.decoder, {
    ...base,
    clock,
    ...options.server,
  });
  const client = new Channel(clientEnd, initiated.keys, initiated.decoder, base);
  const faults: Error[] = [];
  server.onFault = (e) => faults.push(e);
  return { server, client, serverEnd, clientEnd, clock, faults };
}

/** Receives on `channel` in the background: each frame's messages, and how receive ended. */
function collect(channel: Channel) {
  const frames: Message[][] = [];
  const got = {
    frames,
    messages: () => frames.flat(),
    ended: false,
    error: null as unknown,
    done: null as unknown as Promise<void>,
  };
  got.done = channel.receive(({ messages }) => void frames.push(messages)).then(
    () => void (got.ended = true),
    (e) => void (got.ended = true, got.error = e),
  );
  return got;
}

const text = (bytes: number) => "x".repeat(bytes);

for (const kind of ["memory", "tcp"] as const) {
  Deno.test(`Channel over ${kind}: the handshake, then messages both ways`, async () => {
    const s = await connect({ kind });
    const atServer = collect(s.server);
    const atClient = collect(s.client);
    s.clock.advance(500);
    s.client.send(1, 1, "hello");
    s.client.send(2, 2, { n: 42 });
    await until(() => atServer.messages().length === 2, "the client's messages");
    assert.deepEqual(atServer.messages().map((m) => [m.type, m.id, m.body]), [
      [1, 1, "hello"],
      [2, 2, { n: 42 }],
    ]);
    assert.equal(s.server.lastInbound, 1500, "lastInbound reads the injected clock");
    assert.ok(s.server.reads >= 1);
    s.server.send(3, 1, "hi back");
    await until(() => atClient.messages().length === 1, "the server's answer");
    assert.equal(atClient.messages()[0].body, "hi back");
    s.client.close();
    await atServer.done;
    assert.equal(atServer.error, null, "the peer's close ends receive() without an error");
    s.server.close();
    await atClient.done;
  });

  Deno.test(`Channel over ${kind}: a refused protocol version comes back with its reason`, async () => {
    const [clientEnd, serverEnd] = await transports(kind);
    const [accepted, initiated] = await Promise.allSettled([
      acceptHandshake(serverEnd, ed25519KeyPair(), MAX_FRAME),
      initiateHandshake(clientEnd, MAX_FRAME, 9),
    ]);
    assert.equal(accepted.status, "rejected");
    assert.ok(accepted.reason instanceof HandshakeError);
    assert.equal(initiated.status, "rejected");
    assert.match(String(initiated.reason), /refused the connection: .*version 1, not 9/);
  });

  Deno.test(`Channel over ${kind}: a peer that leaves during the handshake is a HandshakeError`, async () => {
    const [clientEnd, serverEnd] = await transports(kind);
    const accepting = acceptHandshake(serverEnd, ed25519KeyPair(), MAX_FRAME);
    await clientEnd.write(new Uint8Array(10));
    clientEnd.close();
    await assert.rejects(accepting, HandshakeError);
  });

  Deno.test(`Channel over ${kind}: one turn's messages leave in one frame, split near COALESCE_BYTES`, async () => {
    const s = await connect({ kind });
    const atServer = collect(s.server);
    for (let i = 1; i <= 10; i++) s.client.send(1, i, i);
    await until(() => atServer.messages().length === 10, "ten small messages");
    assert.deepEqual(atServer.frames.map((f) => f.length), [10]);

    // Six messages of a third of COALESCE_BYTES: a frame is sealed when the next would pass it.
    atServer.frames.length = 0;
    for (let i = 1; i <= 6; i++) s.client.send(1, i, text(COALESCE_BYTES / 3 - 100));
    await until(() => atServer.messages().length === 6, "six big messages");
    assert.deepEqual(atServer.frames.map((f) => f.length), [3, 3]);

    // Corked, messages wait across turns and leave together at the uncork.
    atServer.frames.length = 0;
    s.client.cork();
    s.client.send(1, 1, "a");
    await settle();
    s.client.send(1, 2, "b");
    await settle();
    assert.equal(atServer.frames.length, 0);
    s.client.uncork();
    await until(() => atServer.messages().length === 2, "the corked messages");
    assert.deepEqual(atServer.frames.map((f) => f.map((m) => m.body)), [["a", "b"]]);
    s.client.close();
    s.server.close();
  });

  Deno.test(`Channel over ${kind}: finish() delivers every answer, then half-closes, though the peer still sends`, async () => {
    const s = await connect({ kind, capacity: 8 * 1024 });
    const atServer = collect(s.server);
    // The client keeps sending; a plain close() with its bytes unread would reset it (memory.ts),
    // and it would lose the answers it had not read yet.
    s.client.send(1, 1, "request");
    await until(() => atServer.messages().length === 1, "the request");
    const atClient = collect(s.client);
    for (let i = 1; i <= 50; i++) s.server.send(2, i, text(1000));
    const finished = s.server.finish(1000, 5000);
    s.client.send(1, 2, "late request");
    s.client.send(1, 3, text(20_000));
    await finished;
    assert.ok(!s.server.closed, "finish() waits for the peer to close");
    await atClient.done;
    assert.equal(atClient.error, null, "the half-close ends the client's receive() cleanly");
    assert.deepEqual(
      atClient.messages().map((m) => m.id),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.equal(atServer.messages().length, 1, "what came after finish() is not decoded");

    s.client.close();
    await atServer.done;
    assert.equal(atServer.error, null);
    s.server.close();
    assert.equal(s.clock.pending, 0, "the drain timer is cleared by the close");
  });

  Deno.test(`Channel over ${kind}: a frame sealed with another key ends receive() with FrameAuthError`, async () => {
    const s = await connect({ kind });
    const atServer = collect(s.server);
    s.client.send(1, 1, "fine");
    await until(() => atServer.messages().length === 1, "the good frame");
    const forger = new FrameSealer(new Uint8Array(32).fill(9));
    await writeAll(s.clientEnd, forger.seal(encodeMessages([{ type: 1, id: 2, body: "forged" }])));
    await atServer.done;
    assert.ok(atServer.error instanceof FrameAuthError, String(atServer.error));
    assert.equal(atServer.messages().length, 1);
    s.server.close();
    s.client.close();
  });

  Deno.test(`Channel over ${kind}: a frame over the inbound limit ends receive() with FrameSizeError`, async () => {
    const s = await connect({ kind });
    s.server.setInboundLimit(1024);
    const atServer = collect(s.server);
    s.client.send(1, 1, text(2000));
    await atServer.done;
    assert.ok(atServer.error instanceof FrameSizeError, String(atServer.error));
    s.server.close();
    s.client.close();
  });
}

Deno.test("Channel over memory: without finish(), close() with input unread loses the answers", async () => {
  // What finish() exists for: the reset drops what the peer had not read (memory.ts; over a real
  // network, what was still in flight).
  const s = await connect();
  s.client.send(1, 1, "request the server will not read");
  await s.client.flush();
  for (let i = 1; i <= 5; i++) s.server.send(2, i, "answer");
  await s.server.flush();
  s.server.close();
  const atClient = collect(s.client);
  await atClient.done;
  assert.equal(atClient.messages().length, 0);
  s.client.close();
});

Deno.test("Channel over memory: a peer that stops reading is cut off after writeStallMs on the clock", async () => {
  const total = new OutboundTotal();
  const s = await connect({ capacity: 16 * 1024, server: { writeStallMs: 1000, total } });
  // The client reads nothing: the pipe fills, and the server's write waits.
  for (let i = 1; i <= 8; i++) s.server.send(1, i, text(COALESCE_BYTES - 100));
  await until(() => memory(s.clientEnd).unread === 16 * 1024, "a full pipe");
  assert.ok(s.server.outboundBytes > OUTBOUND_STALL_BYTES);
  assert.equal(total.bytes, s.server.outboundBytes);

  // A slow but live reader: each byte it takes restarts the deadline.
  s.clock.advance(900);
  await s.clientEnd.read(new Uint8Array(4096));
  await settle();
  s.clock.advance(900);
  assert.equal(s.faults.length, 0, "a peer that took bytes within writeStallMs is kept");
  assert.ok(!s.server.closed);

  // Then it stops: writeStallMs after the last write began, the channel closes.
  s.clock.advance(99);
  assert.ok(!s.server.closed);
  s.clock.advance(1);
  assert.ok(s.server.closed);
  assert.equal(s.faults.length, 1);
  assert.ok(s.faults[0] instanceof SlowReaderError, String(s.faults[0]));
  assert.match(s.faults[0].message, /took no byte .* in 1000 ms/);
  assert.equal(total.bytes, 0, "a closed channel gives its waiting bytes back to the total");
  assert.equal(s.clock.pending, 0, "no timer outlives the channel");
});

Deno.test("Channel over memory: a queue past maxOutboundBytes is a SlowReaderError at once", async () => {
  const s = await connect({ capacity: 1024, server: { maxOutboundBytes: 3 * COALESCE_BYTES } });
  for (let i = 1; i <= 4; i++) s.server.send(1, i, text(COALESCE_BYTES - 100));
  await until(() => s.server.closed, "the overflow");
  assert.equal(s.faults.length, 1);
  assert.ok(s.faults[0] instanceof SlowReaderError);
  assert.match(s.faults[0].message, /outbound queue is full/);
  s.server.send(1, 5, "ignored once closed");
});

Deno.test("Channel over memory: finish() gives up after flushMs on a peer that does not read", async () => {
  const s = await connect({ capacity: 1024 });
  for (let i = 1; i <= 4; i++) s.server.send(1, i, text(10_000));
  const finished = s.server.finish(500, 5000);
  await until(() => memory(s.clientEnd).unread === 1024, "a full pipe");
  s.clock.advance(499);
  await settle();
  assert.ok(!s.server.closed);
  s.clock.advance(1);
  await finished;
  assert.ok(s.server.closed);
  assert.equal(s.clock.pending, 0);
});

Deno.test("Channel over memory: finish() closes after drainMs when the peer never closes", async () => {
  const s = await connect();
  const atClient = collect(s.client);
  s.server.send(1, 1, "bye");
  await s.server.finish(500, 2000);
  await atClient.done;
  assert.deepEqual(atClient.messages().map((m) => m.body), ["bye"]);
  s.clock.advance(1999);
  assert.ok(!s.server.closed);
  s.clock.advance(1);
  assert.ok(s.server.closed);
});

Deno.test("Channel over memory: a write to a peer that is gone is a ConnectionGone fault", async () => {
  const s = await connect();
  const atServer = collect(s.server);
  s.client.close();
  await atServer.done;
  assert.equal(atServer.error, null);
  s.server.send(1, 1, "into the void" as Value);
  await until(() => s.server.closed, "the fault");
  assert.equal(s.faults.length, 1);
  assert.ok(s.faults[0] instanceof ConnectionGone, String(s.faults[0]));
});

Deno.test("Channel: a transport's own 'gone' errors end receive() cleanly and reach onFault as ConnectionGone", async () => {
  // TCP hands Deno's errors through unwrapped and classifies them with isGone; so may others.
  class PlatformGone extends Error {}
  const [end] = memoryPair();
  const transport: Transport = {
    peer: end.peer,
    read: () => Promise.reject(new PlatformGone("reset by peer")),
    write: () => Promise.reject(new PlatformGone("broken pipe")),
    closeWrite: () => end.closeWrite(),
    close: () => end.close(),
    isGone: (e) => e instanceof PlatformGone,
  };
  const channel = new Channel(
    transport,
    { send: new Uint8Array(32), receive: new Uint8Array(32) },
    new FrameDecoder(MAX_FRAME),
    { maxFrameBytes: MAX_FRAME, maxOutboundBytes: 1 << 24, maxDepth: 16 },
  );
  const faults: Error[] = [];
  channel.onFault = (e) => faults.push(e);
  await channel.receive(() => {});
  channel.send(1, 1, "x");
  await until(() => channel.closed, "the fault");
  assert.ok(faults[0] instanceof ConnectionGone, String(faults[0]));
  assert.equal(faults[0].message, "broken pipe");
  assert.ok(faults[0].cause instanceof PlatformGone);
  assert.ok(!transport.isGone(new Error("other")));
});
