/**
 * WebChannel, the browser's message channel over WebCrypto, against Deno's Channel on the other
 * end of an in-memory connection: the same frames both ways, one turn's messages in one frame,
 * order kept although every seal and open is async, and the failures that end a connection.
 */

import assert from "node:assert/strict";
import { FrameSealer } from "../../src/crypto/cipher.ts";
import { ManualClock } from "../../src/clock/clock.ts";
import { FrameAuthError } from "../../src/protocol/errors.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import {
  type DecodedMessages,
  encodeMessages,
  type Message,
} from "../../src/protocol/message_codec.ts";
import { Channel } from "../../src/transport/channel.ts";
import { memoryPair, type MemoryTransport } from "../../src/transport/memory.ts";
import { writeAll } from "../../src/transport/transport.ts";
import {
  OutboundOverflowError,
  WEB_COALESCE_BYTES,
  WebChannel,
  type WebChannelOptions,
} from "../../src/transport/web_channel.ts";
import type { MessageChannel } from "../../src/client/platform.ts";

const C2S = new Uint8Array(32).fill(5);
const S2C = new Uint8Array(32).fill(6);
const MAX_FRAME = 1 << 20;

interface Pair {
  web: WebChannel;
  native: Channel;
  webSide: MemoryTransport;
  nativeSide: MemoryTransport;
}

async function pair(
  opts: Partial<WebChannelOptions> = {},
  capacity?: number,
): Promise<Pair> {
  const [webSide, nativeSide] = memoryPair({ capacity });
  const web = await WebChannel.create(
    webSide,
    { send: C2S, receive: S2C },
    new FrameDecoder(MAX_FRAME),
    { maxFrameBytes: MAX_FRAME, maxOutboundBytes: 1 << 24, maxDepth: 16, ...opts },
  );
  const native = new Channel(
    nativeSide,
    { send: S2C, receive: C2S },
    new FrameDecoder(MAX_FRAME),
    { maxFrameBytes: MAX_FRAME, maxOutboundBytes: 1 << 24, maxDepth: 16 },
  );
  return { web, native, webSide, nativeSide };
}

/** Collects every frame `channel` receives until the connection ends. */
function collect(channel: { receive: MessageChannel["receive"] }): {
  frames: Message[][];
  done: Promise<void>;
} {
  const frames: Message[][] = [];
  const done = channel.receive((d: DecodedMessages) => {
    assert.equal(d.error, undefined);
    frames.push(d.messages);
  });
  return { frames, done };
}

const nextTask = () => new Promise((r) => setTimeout(r, 0));

async function until(what: () => boolean, label: string): Promise<void> {
  for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(what(), `timed out waiting for ${label}`);
}

Deno.test("WebChannel fits the client's MessageChannel interface", async () => {
  const { web, native } = await pair();
  const channel: MessageChannel = web; // a type error here if it does not
  assert.equal(channel.closed, false);
  web.close();
  native.close();
  assert.equal(channel.closed, true);
});

Deno.test("WebChannel: messages sent in one turn leave in one frame, in order", async () => {
  const { web, native } = await pair();
  const got = collect(native);
  for (let i = 1; i <= 5; i++) web.send(7, i, `message ${i}`);
  // Sent from later microtasks of the same turn (a reply handled, an ACK): the same frame.
  await Promise.resolve();
  for (let i = 6; i <= 10; i++) web.send(7, i, `message ${i}`);
  await new Promise<void>((r) => queueMicrotask(r));
  await web.flush();
  web.send(7, 11, "next turn");
  web.send(7, 12, "next turn too");
  await nextTask();
  await web.flush();
  await until(() => got.frames.length === 2, "two frames");
  assert.deepEqual(got.frames[0].map((m) => m.id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(got.frames[0][9].body, "message 10");
  assert.deepEqual(got.frames[1].map((m) => m.id), [11, 12]);
  web.close();
  native.close();
  await got.done;
});

Deno.test("WebChannel: a message bigger than the coalesce size travels alone, and frames stay small", async () => {
  const { web, native } = await pair();
  const got = collect(native);
  const big = new Uint8Array(WEB_COALESCE_BYTES + 1000).fill(9);
  web.send(1, 1, "small before");
  web.send(1, 2, big);
  web.send(1, 3, "small after");
  // Then a hundred 1000-byte messages in one turn: several frames, none past the coalesce size.
  for (let i = 4; i < 104; i++) web.send(1, i, "x".repeat(1000));
  await web.flush();
  await until(() => got.frames.flat().length === 103, "103 messages");
  assert.deepEqual(got.frames.slice(0, 2).map((f) => f.map((m) => m.id)), [[1], [2]]);
  assert.deepEqual(got.frames[1][0].body, big);
  assert.deepEqual(
    got.frames.flat().map((m) => m.id),
    Array.from({ length: 103 }, (_, i) => i + 1),
  );
  const rest = got.frames.slice(2);
  assert.ok(rest.length >= 4, `${rest.length} frames for 100 KB`);
  for (const f of rest) assert.ok(encodeMessages(f).length <= WEB_COALESCE_BYTES);
  web.close();
  native.close();
});

Deno.test("WebChannel: a message over the frame limit is refused; the ones around it go", async () => {
  const { web, native } = await pair({ maxFrameBytes: 4096, maxOutboundBytes: 1 << 20 });
  const got = collect(native);
  web.send(1, 1, "before");
  assert.throws(() => web.send(1, 2, new Uint8Array(5000)), RangeError);
  web.send(1, 3, "after");
  // Messages that fit one by one but not together go in frames within the limit.
  web.send(1, 4, new Uint8Array(3000));
  web.send(1, 5, new Uint8Array(3000));
  await web.flush();
  await until(() => got.frames.flat().length === 4, "four messages");
  assert.deepEqual(got.frames.flat().map((m) => m.id), [1, 3, 4, 5]);
  for (const f of got.frames) assert.ok(encodeMessages(f).length <= 4096);
  web.close();
  native.close();
});

Deno.test("WebChannel: hundreds of frames across turns, with flushes in between, arrive in order", async () => {
  // A small pipe, so that writes wait for the reader while more frames are sealed.
  const { web, native } = await pair({}, 2048);
  const got = collect(native);
  const flushes: Promise<void>[] = [];
  let id = 0;
  for (let turn = 0; turn < 200; turn++) {
    const n = 1 + (turn * 7) % 5;
    for (let i = 0; i < n; i++) {
      id++;
      web.send(2, id, turn % 13 === 0 ? new Uint8Array(WEB_COALESCE_BYTES + id) : `#${id}`);
    }
    if (turn % 3 === 0) flushes.push(web.flush());
    if (turn % 2 === 0) await nextTask();
  }
  await Promise.all(flushes);
  await web.flush();
  await until(() => got.frames.flat().length === id, `${id} messages`);
  assert.deepEqual(got.frames.flat().map((m) => m.id), Array.from({ length: id }, (_, i) => i + 1));
  web.close();
  native.close();
});

Deno.test("WebChannel: inbound frames are handed over in order, one at a time", async () => {
  const { web, native } = await pair();
  const ids: number[] = [];
  let inside = 0;
  const done = web.receive(async (d) => {
    assert.equal(inside++, 0, "frames handed over one at a time");
    // An onFrame that takes a while: the next frame waits for it.
    await new Promise((r) => setTimeout(r, d.messages[0].id % 3));
    ids.push(...d.messages.map((m) => m.id));
    inside--;
  });
  let id = 0;
  for (let turn = 0; turn < 60; turn++) {
    for (let i = 0; i < 1 + turn % 4; i++) native.send(3, ++id, { n: id, pad: "p".repeat(turn) });
    await nextTask();
  }
  await native.flush();
  await until(() => ids.length === id, `${id} messages`);
  assert.deepEqual(ids, Array.from({ length: id }, (_, i) => i + 1));
  native.close();
  await done; // the peer closed: receive ends without an error
});

Deno.test("WebChannel: a tampered frame ends receive() with FrameAuthError and closes the channel", async () => {
  // A byte of the header (the length: the frame then takes bytes of the next one), of the
  // ciphertext, of the tag.
  for (const at of [3, 10, -1]) {
    const { web, nativeSide } = await pair();
    const frames: number[] = [];
    const done = web.receive((d) => void frames.push(d.messages.length));
    const sealer = new FrameSealer(S2C);
    await writeAll(nativeSide, sealer.seal(encodeMessages([{ type: 1, id: 1, body: "fine" }])));
    const bad = sealer.seal(encodeMessages([{ type: 1, id: 2, body: "tampered" }]));
    bad[at < 0 ? bad.length + at : at] ^= 0x01;
    await writeAll(nativeSide, bad);
    await writeAll(nativeSide, sealer.seal(encodeMessages([{ type: 1, id: 3, body: "more" }])));
    await assert.rejects(done, FrameAuthError);
    assert.deepEqual(frames, [1], "the good frame before it was handed over");
    assert.equal(web.closed, true);
    nativeSide.close();
  }
});

Deno.test("WebChannel.finish(): what was sent arrives, the sending side shuts, input is dropped", async () => {
  const { web, native } = await pair();
  const got = collect(native);
  const webFrames: number[] = [];
  const webDone = web.receive((d) => void webFrames.push(d.messages.length));
  web.send(4, 1, "last words");
  web.send(4, 2, "really");
  await web.finish(1000, 1000);
  await got.done; // the native side read everything, then the end of the input
  assert.deepEqual(got.frames.flat().map((m) => m.body), ["last words", "really"]);
  // What the peer still sends is read but not handed over.
  native.send(5, 9, "too late");
  await native.flush();
  native.close();
  await webDone;
  assert.deepEqual(webFrames, []);
  web.close();
});

Deno.test("WebChannel.finish() closes the channel after drainMs when the peer never closes", async () => {
  const clock = new ManualClock();
  const { web, native } = await pair({ clock });
  const got = collect(native);
  const webDone = web.receive(() => {});
  web.send(4, 1, "bye");
  await web.finish(1000, 500);
  await got.done;
  assert.equal(web.closed, false);
  clock.advance(499);
  assert.equal(web.closed, false);
  clock.advance(1);
  assert.equal(web.closed, true);
  await webDone;
  native.close();
});

Deno.test("WebChannel: an outbound queue past its limit closes the channel with OutboundOverflowError", async () => {
  // The peer never reads: the pipe takes 1 KiB, then every write waits.
  const { web, native } = await pair({ maxFrameBytes: 16_384, maxOutboundBytes: 64 * 1024 }, 1024);
  const faults: Error[] = [];
  web.onFault = (e) => faults.push(e);
  // Caught at once: the rejection comes while the loop below still sends.
  const done = web.receive(() => {}).then(() => null, (e) => e);
  let sent = 0;
  while (!web.closed && sent < 100) {
    web.send(6, ++sent, new Uint8Array(10_000));
    await nextTask();
  }
  assert.ok(web.closed, "the channel gave up");
  assert.ok(sent >= 6 && sent <= 8, `gave up after ${sent} messages of 10 KB`);
  assert.equal(faults.length, 1);
  assert.ok(faults[0] instanceof OutboundOverflowError, String(faults[0]));
  assert.equal(await done, faults[0], "receive() reports why the channel closed");
  native.close();
});

Deno.test("WebChannel refuses an outbound limit that cannot hold its largest frame", async () => {
  const [a, b] = memoryPair();
  await assert.rejects(
    WebChannel.create(a, { send: C2S, receive: S2C }, new FrameDecoder(MAX_FRAME), {
      maxFrameBytes: 4096,
      maxOutboundBytes: 4096,
      maxDepth: 16,
    }),
    RangeError,
  );
  a.close();
  b.close();
});
