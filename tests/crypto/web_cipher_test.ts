/**
 * The browser's frame cipher (WebCrypto AES-256-GCM) against cipher.ts's: frames sealed by one
 * open with the other, frame after frame, and the nonce is the documented one.
 */

import assert from "node:assert/strict";
import * as nc from "node:crypto";
import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import { frameNonce, WebFrameOpener, WebFrameSealer } from "../../src/crypto/web/cipher.ts";
import { FrameAuthError } from "../../src/protocol/errors.ts";
import { FRAME_HEADER_BYTES, type SealedFrame, TAG_BYTES } from "../../src/protocol/frame.ts";

const KEY = new Uint8Array(32).map((_, i) => i * 7 + 1);
const OTHER_KEY = new Uint8Array(32).map((_, i) => i * 7 + 2);

function split(frame: Uint8Array): SealedFrame {
  return { header: frame.slice(0, FRAME_HEADER_BYTES), body: frame.slice(FRAME_HEADER_BYTES) };
}

/** Plaintexts of assorted sizes (an empty one, one past a 16-byte block, a big one). */
const plaintexts = [0, 1, 15, 16, 17, 100, 4096, 70_000, 5, 3].map((n, i) =>
  new Uint8Array(n).map((_, j) => (i * 31 + j) & 0xff)
);

Deno.test("frameNonce() is 4 zero bytes and the counter as u64 big-endian", () => {
  assert.deepEqual(frameNonce(0), new Uint8Array(12));
  assert.deepEqual(frameNonce(1), Uint8Array.fromHex("000000000000000000000001"));
  assert.deepEqual(frameNonce(0x1_0000_0002), Uint8Array.fromHex("000000000000000100000002"));
  assert.deepEqual(
    frameNonce(Number.MAX_SAFE_INTEGER),
    Uint8Array.fromHex("00000000001fffffffffffff"),
  );
  assert.throws(() => frameNonce(-1), RangeError);
  assert.throws(() => frameNonce(0.5), RangeError);
});

Deno.test("WebFrameSealer's frames open with cipher.ts's FrameOpener, in order", async () => {
  const sealer = await WebFrameSealer.create(KEY);
  const opener = new FrameOpener(KEY);
  for (const p of plaintexts) {
    const frame = await sealer.seal(p);
    assert.equal(frame.length, FRAME_HEADER_BYTES + p.length + TAG_BYTES);
    assert.deepEqual(opener.open(split(frame)), p);
  }
});

Deno.test("cipher.ts's FrameSealer's frames open with WebFrameOpener, in order", async () => {
  const sealer = new FrameSealer(KEY);
  const opener = await WebFrameOpener.create(KEY);
  for (const p of plaintexts) {
    assert.deepEqual(await opener.open(split(sealer.seal(p))), p);
  }
});

Deno.test("both sealers give the same bytes for the same key, counter and plaintext", async () => {
  const web = await WebFrameSealer.create(KEY);
  const native = new FrameSealer(KEY);
  for (const p of plaintexts) assert.deepEqual(await web.seal(p), native.seal(p));
});

Deno.test("WebFrameSealer's frame n is AES-256-GCM under frameNonce(n) with the header as AAD", async () => {
  const sealer = await WebFrameSealer.create(KEY);
  for (let n = 0; n < 6; n++) {
    const p = plaintexts[n];
    const frame = await sealer.seal(p);
    const c = nc.createCipheriv("aes-256-gcm", KEY, frameNonce(n));
    c.setAAD(frame.subarray(0, FRAME_HEADER_BYTES));
    const body = new Uint8Array([...c.update(p), ...c.final(), ...c.getAuthTag()]);
    assert.deepEqual(frame.subarray(FRAME_HEADER_BYTES), body, `frame ${n}`);
  }
});

Deno.test("seals started together number their frames in the order they were called", async () => {
  const sealer = await WebFrameSealer.create(KEY);
  const frames = await Promise.all(plaintexts.map((p) => sealer.seal(p)));
  const opener = new FrameOpener(KEY);
  frames.forEach((f, i) => assert.deepEqual(opener.open(split(f)), plaintexts[i]));
});

Deno.test("WebFrameOpener refuses a flipped bit in header, ciphertext or tag, and then every frame", async () => {
  const sealer = new FrameSealer(KEY);
  const frame = sealer.seal(new TextEncoder().encode("attack at dawn"));
  const second = split(sealer.seal(new TextEncoder().encode("frame 1")));
  for (const at of [0, 3, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 5, frame.length - 1]) {
    const bad = frame.slice();
    bad[at] ^= 0x04;
    const opener = await WebFrameOpener.create(KEY);
    await assert.rejects(opener.open(split(bad)), FrameAuthError, `byte ${at}`);
    // Any failure is final: not even the frame that comes next (counter 1) opens afterwards.
    await assert.rejects(opener.open(second), FrameAuthError);
  }
  const fresh = await WebFrameOpener.create(KEY);
  await fresh.open(split(frame));
  assert.deepEqual(new TextDecoder().decode(await fresh.open(second)), "frame 1");
  const wrongKey = await WebFrameOpener.create(OTHER_KEY);
  await assert.rejects(wrongKey.open(split(frame)), FrameAuthError);
});

Deno.test("WebFrameOpener refuses frames replayed, reordered or dropped", async () => {
  const sealer = new FrameSealer(KEY);
  const [a, b, c] = ["a", "b", "c"].map((s) => split(sealer.seal(new TextEncoder().encode(s))));
  const replay = await WebFrameOpener.create(KEY);
  await replay.open(a);
  await assert.rejects(replay.open(a), FrameAuthError);
  const reorder = await WebFrameOpener.create(KEY);
  await assert.rejects(reorder.open(b), FrameAuthError);
  const drop = await WebFrameOpener.create(KEY);
  await drop.open(a);
  await assert.rejects(drop.open(c), FrameAuthError);
});

Deno.test("the web cipher refuses a key that is not 32 bytes", async () => {
  await assert.rejects(WebFrameSealer.create(new Uint8Array(16)), RangeError);
  await assert.rejects(WebFrameOpener.create(new Uint8Array(33)), RangeError);
});
