/**
 * Seeded decoder fuzzing. Random bytes and mutated valid encodings go through decodeValue,
 * decodeMessages and FrameDecoder + FrameOpener; each input must either decode or throw one of
 * the typed errors (DecodeError, FrameSizeError, FrameAuthError). Anything else is a bug.
 *
 * Every run uses fixed seeds; set PARLEY_FUZZ_SEED to try another one. A failure names the seed
 * and the iteration, so it can be replayed.
 */

import assert from "node:assert/strict";
import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import { DecodeError, FrameAuthError, FrameSizeError } from "../../src/protocol/errors.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { decodeMessages, encodeMessages, type Message } from "../../src/protocol/message_codec.ts";
import { decodeValue, encodeValue, type Value } from "../../src/protocol/value.ts";
import { frameFields, mutate, randomValue, valueHeaders } from "../../scripts/fuzz_inputs.ts";
import { fuzzSeed, Prng } from "./prng.ts";

const RANDOM_INPUTS = 5_000;
const MUTATED_INPUTS = 5_000;
const ROUND_TRIPS = 2_000;
const MAX_PLAINTEXT = 2048;
const KEY = new Uint8Array(32).map((_, i) => 0xa0 ^ i);

type TypedError = typeof DecodeError | typeof FrameSizeError | typeof FrameAuthError;

// ---------------------------------------------------------------------------------------------
// Inputs: the generators and mutations are shared with scripts/fuzz.ts.

/** Messages with random types, ids and values (not shaped like requests). */
function randomMessages(rng: Prng): Message[] {
  const out: Message[] = [];
  const n = rng.int(1, 4);
  for (let i = 0; i < n; i++) {
    out.push({ type: rng.u32(), id: rng.u32(), body: randomValue(rng, 2) });
  }
  return out;
}

/** Offsets of every value header in a plaintext of valid messages. */
function messageValueHeaders(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 0; at < b.length;) at = valueHeaders(b, at + 8, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Harness

function describeInput(input: Uint8Array): string {
  const shown = input.subarray(0, 160).toHex();
  return input.length > 160
    ? `${shown}… (${input.length} bytes)`
    : `${shown} (${input.length} bytes)`;
}

/** Runs `fn`; returns its result, or the allowed error it threw. Any other error fails. */
function expectTyped<T>(
  allowed: readonly TypedError[],
  where: string,
  input: Uint8Array,
  fn: () => T,
): { value: T } | { error: Error } {
  try {
    return { value: fn() };
  } catch (e) {
    if (allowed.some((cls) => e instanceof cls)) return { error: e as Error };
    const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
    assert.fail(`${where}: untyped exception for input ${describeInput(input)}\n${detail}`);
  }
}

/** A value that decoded must survive encode → decode unchanged. */
function assertReencodes(v: Value, where: string): void {
  let again: Value;
  try {
    again = decodeValue(encodeValue(v));
  } catch (e) {
    assert.fail(`${where}: a decoded value failed to re-encode or re-decode: ${e}`);
  }
  assert.deepStrictEqual(again, v, `${where}: re-encoded value differs`);
}

function checkDecodeValue(input: Uint8Array, where: string): void {
  const result = expectTyped([DecodeError], where, input, () => decodeValue(input));
  if ("value" in result) assertReencodes(result.value, where);
}

function checkDecodeMessages(input: Uint8Array, where: string): void {
  const result = expectTyped([], where, input, () => decodeMessages(input));
  assert.ok("value" in result);
  const decoded = result.value;
  if (decoded.error) {
    assert.ok(decoded.error.cause instanceof DecodeError, `${where}: error cause is not typed`);
    assert.ok(Number.isInteger(decoded.error.id) && decoded.error.id >= 0, `${where}: error id`);
  } else {
    assert.ok(decoded.messages.length > 0, `${where}: no error but no message`);
  }
  for (const m of decoded.messages) {
    assert.ok(m.type >= 0 && m.type <= 0xffff_ffff, `${where}: type out of range`);
    assert.ok(m.id >= 0 && m.id <= 0xffff_ffff, `${where}: id out of range`);
    assertReencodes(m.body, where);
  }
}

/**
 * Feeds `stream` to a FrameDecoder in random chunks and opens each frame, as a connection
 * would, stopping at the first typed error. Returns the opened plaintexts and whether it
 * stopped on an error.
 */
function runFrames(
  rng: Prng,
  stream: Uint8Array,
  where: string,
): { plaintexts: Uint8Array[]; error?: Error; leftover: number } {
  const decoder = new FrameDecoder(MAX_PLAINTEXT);
  const opener = new FrameOpener(KEY);
  const plaintexts: Uint8Array[] = [];
  const allowed = [DecodeError, FrameSizeError, FrameAuthError];
  for (const chunk of rng.chunks(stream, rng.pick([1, 3, 16, 64, 512, 4096]))) {
    decoder.push(chunk);
    for (;;) {
      const read = expectTyped(allowed, where, stream, () => decoder.readFrame());
      if ("error" in read) return { plaintexts, error: read.error, leftover: decoder.buffered };
      const frame = read.value;
      if (frame === null) break;
      const opened = expectTyped(allowed, where, stream, () => opener.open(frame));
      if ("error" in opened) return { plaintexts, error: opened.error, leftover: decoder.buffered };
      checkDecodeMessages(opened.value, where);
      plaintexts.push(opened.value);
    }
  }
  return { plaintexts, leftover: decoder.buffered };
}

function randomInput(rng: Prng): Uint8Array {
  return rng.bytes(rng.int(0, 300));
}

// ---------------------------------------------------------------------------------------------
// Tests

Deno.test("encodeValue() and decodeValue() round trip random nested values exactly (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0001);
  const rng = new Prng(seed);
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const where = `seed ${seed}, iteration ${i}`;
    const v = randomValue(rng);
    const bytes = encodeValue(v);
    let back: Value;
    try {
      back = decodeValue(bytes);
    } catch (e) {
      assert.fail(`${where}: a valid encoding failed to decode: ${e}; ${describeInput(bytes)}`);
    }
    assert.deepStrictEqual(back, v, where);
    assert.deepStrictEqual(encodeValue(back), bytes, `${where}: re-encoding changed the bytes`);
  }
});

Deno.test("encodeMessages() and decodeMessages() round trip random messages (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0002);
  const rng = new Prng(seed);
  for (let i = 0; i < ROUND_TRIPS / 2; i++) {
    const messages = randomMessages(rng);
    assert.deepStrictEqual(
      decodeMessages(encodeMessages(messages)),
      { messages },
      `seed ${seed}, iteration ${i}`,
    );
  }
});

Deno.test("decodeValue() returns or throws DecodeError on random bytes (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0003);
  const rng = new Prng(seed);
  for (let i = 0; i < RANDOM_INPUTS; i++) {
    checkDecodeValue(randomInput(rng), `seed ${seed}, iteration ${i}`);
  }
});

Deno.test("decodeValue() returns or throws DecodeError on mutated encodings (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0004);
  const rng = new Prng(seed);
  let rejected = 0;
  for (let i = 0; i < MUTATED_INPUTS; i++) {
    const valid = encodeValue(randomValue(rng));
    const headers: number[] = [];
    valueHeaders(valid, 0, headers);
    const input = mutate(rng, valid, headers.map((h) => h + 1));
    const where = `seed ${seed}, iteration ${i}`;
    try {
      assertReencodes(decodeValue(input), where);
    } catch (e) {
      if (!(e instanceof DecodeError)) {
        if (e instanceof assert.AssertionError) throw e;
        assert.fail(`${where}: untyped exception for input ${describeInput(input)}\n${e}`);
      }
      rejected++;
    }
  }
  // the mutations must actually reach the rejection paths
  assert.ok(rejected > MUTATED_INPUTS / 2, `only ${rejected} mutated inputs were rejected`);
});

Deno.test("decodeMessages() never throws on random bytes (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0005);
  const rng = new Prng(seed);
  for (let i = 0; i < RANDOM_INPUTS; i++) {
    checkDecodeMessages(randomInput(rng), `seed ${seed}, iteration ${i}`);
  }
});

Deno.test("decodeMessages() never throws on mutated plaintexts (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0006);
  const rng = new Prng(seed);
  let partial = 0;
  for (let i = 0; i < MUTATED_INPUTS; i++) {
    const valid = encodeMessages(randomMessages(rng));
    const fields = [
      ...messageValueHeaders(valid).map((h) => h + 1),
      ...[0, 4].filter(() => rng.chance(0.2)), // the first message's type and id
    ];
    const input = mutate(rng, valid, fields);
    const where = `seed ${seed}, iteration ${i}`;
    checkDecodeMessages(input, where);
    const decoded = decodeMessages(input);
    if (decoded.error && decoded.messages.length > 0) partial++;
  }
  // some plaintexts must go bad after a good message, exercising the partial-decode path
  assert.ok(partial > 0, "no mutated plaintext kept a message before its error");
});

Deno.test("FrameDecoder and FrameOpener only throw typed errors on random bytes (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0007);
  const rng = new Prng(seed);
  for (let i = 0; i < RANDOM_INPUTS; i++) {
    const input = randomInput(rng);
    if (input.length >= 4 && rng.chance(0.5)) {
      // a plausible length half the time, so bodies reach FrameOpener.open()
      new DataView(input.buffer).setUint32(0, rng.int(16, input.length));
    }
    runFrames(rng, input, `seed ${seed}, iteration ${i}`);
  }
});

Deno.test("FrameDecoder and FrameOpener only throw typed errors on mutated streams (seeded)", () => {
  const seed = fuzzSeed(0x5eed_0008);
  const rng = new Prng(seed);
  let intact = 0;
  let authFailures = 0;
  for (let i = 0; i < MUTATED_INPUTS; i++) {
    const where = `seed ${seed}, iteration ${i}`;
    const sealer = new FrameSealer(KEY);
    const plaintexts: Uint8Array[] = [];
    const frames: Uint8Array[] = [];
    const count = rng.int(1, 3);
    for (let f = 0; f < count; f++) {
      let plaintext: Uint8Array;
      do {
        plaintext = encodeMessages(randomMessages(rng));
        if (rng.chance(0.3)) {
          // authentic but malformed: the message decoder sees the damage, not the cipher
          plaintext = mutate(rng, plaintext, messageValueHeaders(plaintext).map((h) => h + 1));
        }
      } while (plaintext.length > MAX_PLAINTEXT); // an honest sealer stays under the maximum
      plaintexts.push(plaintext);
      frames.push(sealer.seal(plaintext));
    }
    const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) {
      stream.set(f, at);
      at += f.length;
    }

    if (rng.chance(0.2)) {
      // unmutated: every frame must open at any chunking and give back what was sealed
      const result = runFrames(rng, stream, where);
      assert.equal(result.error, undefined, `${where}: an intact stream failed`);
      assert.equal(result.leftover, 0, `${where}: bytes left over`);
      assert.deepStrictEqual(result.plaintexts, plaintexts, where);
      intact++;
      continue;
    }
    const input = mutate(rng, stream, frameFields(stream));
    const result = runFrames(rng, input, where);
    // whatever opened must be one of the sealed plaintexts, in order: no forgery got through
    for (let p = 0; p < result.plaintexts.length; p++) {
      assert.deepStrictEqual(result.plaintexts[p], plaintexts[p], `${where}: frame ${p} forged`);
    }
    if (result.error instanceof FrameAuthError) authFailures++;
  }
  assert.ok(intact > 0 && authFailures > 0, `intact ${intact}, failures ${authFailures}`);
});
