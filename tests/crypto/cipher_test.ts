/**
 * The session cipher: AES-256-GCM with counter nonces and the frame header as AAD.
 */

import assert from "node:assert/strict";
import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import { FrameAuthError } from "../../src/protocol/errors.ts";
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type SealedFrame,
  TAG_BYTES,
} from "../../src/protocol/frame.ts";

const KEY = new Uint8Array(32).map((_, i) => i * 7 + 1);
const OTHER_KEY = new Uint8Array(32).map((_, i) => i * 7 + 2);
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Splits a sealed frame into what the FrameDecoder would hand out (copies). */
function split(frame: Uint8Array): SealedFrame {
  return { header: frame.slice(0, FRAME_HEADER_BYTES), body: frame.slice(FRAME_HEADER_BYTES) };
}

function assertAuthFails(opener: FrameOpener, frame: SealedFrame, message?: string): void {
  assert.throws(() => opener.open(frame), FrameAuthError, message);
}

Deno.test("FrameSealer.seal() writes header, ciphertext and tag with the body length", () => {
  const plaintext = enc.encode("hello");
  const frame = new FrameSealer(KEY).seal(plaintext);
  assert.equal(frame.length, FRAME_HEADER_BYTES + plaintext.length + TAG_BYTES);
  const length = new DataView(frame.buffer, frame.byteOffset).getUint32(0);
  assert.equal(length, plaintext.length + TAG_BYTES);
  const ciphertext = frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + plaintext.length);
  assert.notDeepEqual(ciphertext, plaintext);
});

Deno.test("FrameOpener.open() round trips several frames in order", () => {
  const sealer = new FrameSealer(KEY);
  const opener = new FrameOpener(KEY);
  const texts = ["first", "", "third with ünïcode 😀", "x".repeat(5000), "last"];
  for (const t of texts) {
    assert.equal(dec.decode(opener.open(split(sealer.seal(enc.encode(t))))), t);
  }
});

Deno.test("FrameOpener.open() works on frames cut by a FrameDecoder", () => {
  const sealer = new FrameSealer(KEY);
  const stream = [sealer.seal(enc.encode("a")), sealer.seal(enc.encode("bb"))];
  const d = new FrameDecoder(1024);
  for (const f of stream) d.push(f);
  const opener = new FrameOpener(KEY);
  assert.equal(dec.decode(opener.open(d.readFrame()!)), "a");
  assert.equal(dec.decode(opener.open(d.readFrame()!)), "bb");
});

Deno.test("FrameSealer.seal() gives different ciphertexts for the same plaintext", () => {
  const sealer = new FrameSealer(KEY);
  const a = sealer.seal(enc.encode("same"));
  const b = sealer.seal(enc.encode("same"));
  assert.notDeepEqual(a, b);
  // and two sealers with the same key start from the same counter
  assert.deepEqual(new FrameSealer(KEY).seal(enc.encode("same")), a);
});

Deno.test("FrameOpener.open() throws FrameAuthError for a flipped ciphertext bit", () => {
  const frame = new FrameSealer(KEY).seal(enc.encode("attack at dawn"));
  for (let i = FRAME_HEADER_BYTES; i < frame.length - TAG_BYTES; i++) {
    for (const bit of [0x01, 0x80]) {
      const bad = frame.slice();
      bad[i] ^= bit;
      assertAuthFails(new FrameOpener(KEY), split(bad), `byte ${i}, bit ${bit}`);
    }
  }
});

Deno.test("FrameOpener.open() throws FrameAuthError for a flipped tag bit", () => {
  const frame = new FrameSealer(KEY).seal(enc.encode("attack at dawn"));
  for (let i = frame.length - TAG_BYTES; i < frame.length; i++) {
    const bad = frame.slice();
    bad[i] ^= 0x10;
    assertAuthFails(new FrameOpener(KEY), split(bad), `tag byte ${i}`);
  }
});

Deno.test("FrameOpener.open() throws FrameAuthError for a flipped header bit", () => {
  const frame = new FrameSealer(KEY).seal(enc.encode("attack at dawn"));
  for (let i = 0; i < FRAME_HEADER_BYTES; i++) {
    for (const bit of [0x01, 0x80]) {
      const { header, body } = split(frame);
      header[i] ^= bit;
      assertAuthFails(new FrameOpener(KEY), { header, body }, `header byte ${i}, bit ${bit}`);
    }
  }
});

Deno.test("FrameOpener.open() throws FrameAuthError for a truncated body", () => {
  const frame = new FrameSealer(KEY).seal(enc.encode("attack at dawn"));
  const { header, body } = split(frame);
  assertAuthFails(new FrameOpener(KEY), { header, body: body.subarray(0, body.length - 1) });
  assertAuthFails(new FrameOpener(KEY), { header, body: body.subarray(1) });
});

Deno.test("FrameOpener.open() throws FrameAuthError for a replayed frame", () => {
  const sealer = new FrameSealer(KEY);
  const opener = new FrameOpener(KEY);
  const frame = sealer.seal(enc.encode("once"));
  assert.equal(dec.decode(opener.open(split(frame))), "once");
  assertAuthFails(opener, split(frame));
});

Deno.test("FrameOpener.open() throws FrameAuthError for reordered frames", () => {
  const sealer = new FrameSealer(KEY);
  const first = sealer.seal(enc.encode("first"));
  const second = sealer.seal(enc.encode("second"));
  assertAuthFails(new FrameOpener(KEY), split(second));
  // the frames do open in their true order
  const opener = new FrameOpener(KEY);
  assert.equal(dec.decode(opener.open(split(first))), "first");
  assert.equal(dec.decode(opener.open(split(second))), "second");
});

Deno.test("FrameOpener.open() throws FrameAuthError when a frame was dropped", () => {
  const sealer = new FrameSealer(KEY);
  sealer.seal(enc.encode("lost"));
  const third = sealer.seal(enc.encode("arrives"));
  assertAuthFails(new FrameOpener(KEY), split(third));
});

Deno.test("FrameOpener.open() throws FrameAuthError with the wrong key", () => {
  const frame = new FrameSealer(KEY).seal(enc.encode("secret"));
  assertAuthFails(new FrameOpener(OTHER_KEY), split(frame));
});

Deno.test("FrameOpener.open() throws FrameAuthError for an empty plaintext under a wrong key", () => {
  const frame = new FrameSealer(KEY).seal(new Uint8Array(0));
  assert.equal(frame.length, FRAME_HEADER_BYTES + TAG_BYTES);
  assert.deepEqual(new FrameOpener(KEY).open(split(frame)), new Uint8Array(0));
  assertAuthFails(new FrameOpener(OTHER_KEY), split(frame));
});

Deno.test("FrameAuthError keeps the underlying cause", () => {
  const frame = new FrameSealer(KEY).seal(enc.encode("x"));
  try {
    new FrameOpener(OTHER_KEY).open(split(frame));
    assert.fail("open() must throw");
  } catch (e) {
    assert.ok(e instanceof FrameAuthError);
    assert.equal(e.name, "FrameAuthError");
    assert.ok(e.cause !== undefined);
  }
});
