/**
 * The frame cutter: incremental decoding at any chunking, raw handshake reads, chunks lent without
 * a copy, and size limits checked before any allocation.
 */

import assert from "node:assert/strict";
import { DecodeError, FrameSizeError } from "../../src/protocol/errors.ts";
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  frameHeader,
  type SealedFrame,
  TAG_BYTES,
} from "../../src/protocol/frame.ts";
import { Prng } from "./prng.ts";
import { concat } from "../helpers/bytes.ts";

const MAX_PLAINTEXT = 1024;

/** A fake frame: a valid header and a body of `bodyLength` bytes filled from `fill`. */
function rawFrame(bodyLength: number, fill: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + bodyLength);
  out.set(frameHeader(bodyLength));
  for (let i = 0; i < bodyLength; i++) out[FRAME_HEADER_BYTES + i] = (fill + i) & 0xff;
  return out;
}

/** Pushes each chunk and drains every complete frame after each push. */
function decodeAll(chunks: Uint8Array[], maxPlaintext = MAX_PLAINTEXT): SealedFrame[] {
  const d = new FrameDecoder(maxPlaintext);
  const frames: SealedFrame[] = [];
  for (const chunk of chunks) {
    d.push(chunk);
    for (let f = d.readFrame(); f; f = d.readFrame()) frames.push(f);
  }
  assert.equal(d.buffered, 0, "every pushed byte was handed out");
  return frames;
}

/** A stream of frames with a spread of sizes, including the smallest (tag only). */
function sampleStream(): { stream: Uint8Array; frames: Uint8Array[] } {
  const frames = [
    rawFrame(TAG_BYTES, 1),
    rawFrame(TAG_BYTES + 1, 2),
    rawFrame(TAG_BYTES + 100, 3),
    rawFrame(MAX_PLAINTEXT + TAG_BYTES, 4),
    rawFrame(TAG_BYTES + 7, 5),
  ];
  return { stream: concat(...frames), frames };
}

function frameBytes(f: SealedFrame): Uint8Array {
  return concat(f.header, f.body);
}

Deno.test("FrameDecoder cuts one frame pushed whole into its header and body", () => {
  const raw = rawFrame(20, 9);
  const [frame] = decodeAll([raw]);
  assert.deepEqual(frame.header, raw.subarray(0, 4));
  assert.deepEqual(frame.body, raw.subarray(4));
  assert.equal(frame.header.toHex(), "00000014");
});

Deno.test("FrameDecoder returns null until a frame has fully arrived", () => {
  const raw = rawFrame(30, 0);
  const d = new FrameDecoder(MAX_PLAINTEXT);
  assert.equal(d.readFrame(), null);
  d.push(raw.subarray(0, 3));
  assert.equal(d.readFrame(), null);
  assert.equal(d.buffered, 3);
  d.push(raw.subarray(3, 20));
  assert.equal(d.readFrame(), null);
  d.push(raw.subarray(20));
  assert.deepEqual(frameBytes(d.readFrame()!), raw);
  assert.equal(d.readFrame(), null);
  assert.equal(d.buffered, 0);
});

Deno.test("FrameDecoder gives identical frames when fed one byte at a time", () => {
  const { stream, frames } = sampleStream();
  const bytes = [...stream].map((b) => new Uint8Array([b]));
  const got = decodeAll(bytes);
  assert.deepEqual(got.map(frameBytes), frames);
});

Deno.test("FrameDecoder gives identical frames at random chunk boundaries (seeded)", () => {
  const { stream, frames } = sampleStream();
  const whole = decodeAll([stream]).map(frameBytes);
  assert.deepEqual(whole, frames);
  for (let seed = 1; seed <= 200; seed++) {
    const rng = new Prng(seed);
    const maxChunk = rng.pick([2, 5, 17, 64, 300, 2000]);
    const got = decodeAll(rng.chunks(stream, maxChunk)).map(frameBytes);
    assert.deepEqual(got, frames, `seed ${seed}, max chunk ${maxChunk}`);
  }
});

Deno.test("FrameDecoder reads several frames pushed in one chunk", () => {
  const a = rawFrame(16, 1);
  const b = rawFrame(17, 2);
  const c = rawFrame(40, 3);
  const d = new FrameDecoder(MAX_PLAINTEXT);
  d.push(concat(a, b, c));
  assert.deepEqual(frameBytes(d.readFrame()!), a);
  assert.deepEqual(frameBytes(d.readFrame()!), b);
  assert.deepEqual(frameBytes(d.readFrame()!), c);
  assert.equal(d.readFrame(), null);
});

Deno.test("FrameDecoder ignores empty chunks", () => {
  const raw = rawFrame(16, 1);
  const got = decodeAll([new Uint8Array(0), raw.subarray(0, 2), new Uint8Array(0), raw.slice(2)]);
  assert.deepEqual(got.map(frameBytes), [raw]);
});

Deno.test("FrameDecoder.readRaw() takes handshake bytes, then frames follow", () => {
  const hello = new Uint8Array(37).map((_, i) => i + 100);
  const f1 = rawFrame(16, 7);
  const f2 = rawFrame(50, 8);
  const stream = concat(hello, f1, f2);
  for (let seed = 1; seed <= 50; seed++) {
    const rng = new Prng(seed);
    const d = new FrameDecoder(MAX_PLAINTEXT);
    let raw: Uint8Array | null = null;
    const frames: Uint8Array[] = [];
    for (const chunk of rng.chunks(stream, 20)) {
      d.push(chunk);
      if (!raw) {
        raw = d.readRaw(37);
        if (!raw) continue;
      }
      for (let f = d.readFrame(); f; f = d.readFrame()) frames.push(frameBytes(f));
    }
    assert.deepEqual(raw, hello, `seed ${seed}`);
    assert.deepEqual(frames, [f1, f2], `seed ${seed}`);
  }
});

Deno.test("FrameDecoder.readRaw() returns null until enough bytes have arrived", () => {
  const d = new FrameDecoder(MAX_PLAINTEXT);
  d.push(new Uint8Array([1, 2, 3]));
  assert.equal(d.readRaw(5), null);
  assert.equal(d.buffered, 3);
  d.push(new Uint8Array([4, 5, 6]));
  assert.deepEqual(d.readRaw(5), new Uint8Array([1, 2, 3, 4, 5]));
  assert.deepEqual(d.readRaw(1), new Uint8Array([6]));
  assert.deepEqual(d.readRaw(0), new Uint8Array(0));
  assert.equal(d.readRaw(1), null);
});

Deno.test("FrameDecoder.readRaw() throws DecodeError inside a partly read frame", () => {
  const d = new FrameDecoder(MAX_PLAINTEXT);
  d.push(rawFrame(32, 0).subarray(0, 10));
  assert.equal(d.readFrame(), null);
  assert.throws(() => d.readRaw(1), DecodeError);
});

Deno.test("FrameDecoder accepts the smallest and the largest allowed frame lengths", () => {
  assert.equal(decodeAll([rawFrame(TAG_BYTES, 0)])[0].body.length, TAG_BYTES);
  const big = rawFrame(MAX_PLAINTEXT + TAG_BYTES, 0);
  assert.equal(decodeAll([big])[0].body.length, MAX_PLAINTEXT + TAG_BYTES);
});

Deno.test("FrameDecoder throws FrameSizeError for a length under the 16-byte tag", () => {
  for (const length of [0, 1, TAG_BYTES - 1]) {
    const d = new FrameDecoder(MAX_PLAINTEXT);
    d.push(frameHeader(length));
    assert.throws(() => d.readFrame(), FrameSizeError, `length ${length}`);
  }
});

Deno.test("FrameDecoder throws FrameSizeError for a length over the maximum", () => {
  const d = new FrameDecoder(MAX_PLAINTEXT);
  d.push(frameHeader(MAX_PLAINTEXT + TAG_BYTES + 1));
  assert.throws(() => d.readFrame(), (e: unknown) => {
    assert.ok(e instanceof FrameSizeError);
    assert.match(e.message, new RegExp(`exceeds the maximum of ${MAX_PLAINTEXT + TAG_BYTES}`));
    return true;
  });
});

Deno.test("FrameDecoder rejects a huge length from the 4 header bytes alone", () => {
  // 0xffffffff with a 64-byte max: if the decoder allocated first, this would try 4 GiB or
  // wait for more bytes; it must throw on the header alone.
  const d = new FrameDecoder(64);
  d.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  assert.equal(d.buffered, 4);
  assert.throws(() => d.readFrame(), FrameSizeError);
});

Deno.test("FrameDecoder rejects an oversized length even when its header arrives split", () => {
  const d = new FrameDecoder(64);
  d.push(new Uint8Array([0x7f, 0xff]));
  assert.equal(d.readFrame(), null);
  d.push(new Uint8Array([0xff, 0xff]));
  assert.throws(() => d.readFrame(), FrameSizeError);
});

Deno.test("FrameDecoder.push() copies, so reusing the caller's buffer keeps earlier frames", () => {
  const d = new FrameDecoder(MAX_PLAINTEXT);
  const buf = new Uint8Array(20);
  const first = rawFrame(16, 0x10);
  const second = rawFrame(16, 0x80);

  // half of the first frame, then the buffer is overwritten with the rest of it
  buf.set(first.subarray(0, 10));
  d.push(buf.subarray(0, 10));
  buf.fill(0xee);
  buf.set(first.subarray(10));
  d.push(buf.subarray(0, first.length - 10));
  buf.fill(0xdd);

  // the whole second frame, then the buffer is trashed before anything is read
  buf.set(second);
  d.push(buf);
  buf.fill(0xcc);

  assert.deepEqual(frameBytes(d.readFrame()!), first);
  assert.deepEqual(frameBytes(d.readFrame()!), second);
  assert.equal(d.readFrame(), null);
});

/** Feeds `stream` through one reused buffer of `size` bytes with lend() and keep(). */
function decodeLent(stream: Uint8Array, size: number): Uint8Array[] {
  const d = new FrameDecoder(MAX_PLAINTEXT);
  const buf = new Uint8Array(size);
  const frames: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += size) {
    const chunk = stream.subarray(at, at + size);
    buf.set(chunk);
    d.lend(buf.subarray(0, chunk.length));
    // Opened (here: copied) before the buffer is read into again, as the channel does.
    for (let f = d.readFrame(); f; f = d.readFrame()) frames.push(frameBytes(f));
    d.keep();
    buf.fill(0xee);
  }
  assert.equal(d.buffered, 0, "every lent byte was handed out");
  return frames;
}

Deno.test("FrameDecoder.lend() then keep(): frames survive the reuse of the reader's buffer", () => {
  const { stream, frames } = sampleStream();
  // Whole frames inside one read, frames split across reads, and headers split across reads.
  for (const size of [1, 3, 17, 20, 64, 1000, stream.length]) {
    assert.deepEqual(decodeLent(stream, size), frames, `reads of ${size} bytes`);
  }
});

Deno.test("FrameDecoder.lend() hands out a frame that lies whole in the chunk without a copy", () => {
  const d = new FrameDecoder(MAX_PLAINTEXT);
  const first = rawFrame(16, 1);
  const buf = concat(first, rawFrame(20, 2).subarray(0, 10));
  d.lend(buf);
  const frame = d.readFrame()!;
  assert.equal(frame.body.buffer, buf.buffer);
  assert.deepEqual(frameBytes(frame), first);
  assert.equal(d.readFrame(), null);
  d.keep();
  buf.fill(0);
  d.push(rawFrame(20, 2).subarray(10));
  assert.deepEqual(frameBytes(d.readFrame()!), rawFrame(20, 2));
});

Deno.test("FrameDecoder keeps a lent chunk when more is lent or pushed before keep()", () => {
  for (const next of ["lend", "push"] as const) {
    const d = new FrameDecoder(MAX_PLAINTEXT);
    const frame = rawFrame(16, 7);
    const a = frame.slice(0, 2);
    d.lend(a);
    if (next === "lend") d.lend(frame.slice(2));
    else d.push(frame.slice(2));
    d.keep();
    a.fill(0xff); // keep() said the first buffer may be reused
    assert.deepEqual(frameBytes(d.readFrame()!), frame, next);
  }
});

Deno.test("FrameDecoder returns frames that later pushes do not overwrite", () => {
  const d = new FrameDecoder(MAX_PLAINTEXT);
  d.push(rawFrame(16, 1));
  const a = d.readFrame()!;
  const copy = frameBytes(a);
  d.push(rawFrame(16, 200));
  const b = d.readFrame()!;
  assert.deepEqual(frameBytes(a), copy);
  assert.notDeepEqual(frameBytes(b), copy);
});

Deno.test("frameHeader() writes the body length as a big-endian u32", () => {
  assert.equal(frameHeader(0x0102_0304).toHex(), "01020304");
  assert.equal(frameHeader(16).toHex(), "00000010");
});
