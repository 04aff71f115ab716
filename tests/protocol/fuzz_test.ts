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
import { decodeValue, encodeValue, Tag, type Value } from "../../src/protocol/value.ts";
import { fuzzSeed, Prng } from "./prng.ts";

const RANDOM_INPUTS = 5_000;
const MUTATED_INPUTS = 5_000;
const ROUND_TRIPS = 2_000;
const MAX_GEN_DEPTH = 6;
const MAX_PLAINTEXT = 2048;
const KEY = new Uint8Array(32).map((_, i) => 0xa0 ^ i);

type TypedError = typeof DecodeError | typeof FrameSizeError | typeof FrameAuthError;

// ---------------------------------------------------------------------------------------------
// Random values

const INT_EDGES = [
  0,
  1,
  -1,
  127,
  128,
  255,
  256,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_ffff,
  0x1_0000_0000,
  -0x8000_0000,
  -0x8000_0001,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
];
const DATE_EDGES = [0, 1, -1, 8.64e15, -8.64e15, 1_700_000_000_000];
const KEY_EDGES = ["__proto__", "constructor", "prototype", "toString", "0", "12", "a", "é", "键"];

function randomCodePoint(rng: Prng): number {
  switch (rng.int(0, 6)) {
    case 0:
      return rng.int(0x20, 0x7e); // printable ASCII
    case 1:
      return rng.int(0, 0x1f); // controls, NUL included
    case 2:
      return rng.int(0xa0, 0x7ff); // two-byte UTF-8
    case 3:
      return rng.int(0x4e00, 0x9fff); // CJK
    case 4:
      return rng.int(0x1f300, 0x1faff); // emoji (surrogate pairs in JS)
    case 5:
      return rng.pick([0xfeff, 0xfffd, 0xffff, 0x10ffff, 0xe000]);
    default: {
      // any scalar value, skipping the surrogate range (a lone surrogate is not UTF-8)
      const cp = rng.int(0, 0x10ffff - 0x800);
      return cp < 0xd800 ? cp : cp + 0x800;
    }
  }
}

function randomString(rng: Prng, maxChars: number): string {
  let s = "";
  const n = rng.int(0, maxChars);
  for (let i = 0; i < n; i++) s += String.fromCodePoint(randomCodePoint(rng));
  return s;
}

function randomKey(rng: Prng): string {
  if (rng.chance(0.15)) return rng.pick(KEY_EDGES);
  let key = randomString(rng, 12);
  if (key === "") key = "k";
  while (new TextEncoder().encode(key).length > 255) key = key.slice(0, key.length >> 1);
  return key;
}

function randomInt(rng: Prng): number {
  switch (rng.int(0, 2)) {
    case 0:
      return rng.pick(INT_EDGES);
    case 1:
      return rng.int(-1000, 1000);
    default: {
      const n = (rng.chance(0.5) ? -1 : 1) * (rng.int(0, 0x1f_ffff) * 0x1_0000_0000 + rng.u32());
      return n === 0 ? 0 : n; // never -0: the format has no negative zero
    }
  }
}

function randomDate(rng: Prng): Date {
  if (rng.chance(0.3)) return new Date(rng.pick(DATE_EDGES));
  const ms = Math.floor((rng.next() * 2 - 1) * 8.64e15);
  return new Date(ms);
}

/** A random value of any of the 8 types; lists and dicts nest to at most `MAX_GEN_DEPTH`. */
function randomValue(rng: Prng, depth = 1): Value {
  const canNest = depth < MAX_GEN_DEPTH;
  switch (rng.int(0, canNest ? 9 : 5)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return randomInt(rng);
    case 3:
      return randomString(rng, 20);
    case 4:
      return rng.bytes(rng.int(0, 24));
    case 5:
      return randomDate(rng);
    case 6:
    case 8: {
      const items: Value[] = [];
      const n = rng.int(0, 4);
      for (let i = 0; i < n; i++) items.push(randomValue(rng, depth + 1));
      return items;
    }
    default: {
      const dict: { [key: string]: Value } = {};
      const n = rng.int(0, 4);
      for (let i = 0; i < n; i++) {
        // defineProperty so that "__proto__" becomes a data property, as the decoder makes it
        Object.defineProperty(dict, randomKey(rng), {
          value: randomValue(rng, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return dict;
    }
  }
}

function randomMessages(rng: Prng): Message[] {
  const out: Message[] = [];
  const n = rng.int(1, 4);
  for (let i = 0; i < n; i++) {
    out.push({ type: rng.u32(), id: rng.u32(), body: randomValue(rng, 2) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutations

/** Offsets of every value header in a valid encoding that starts at `at` (independent walker). */
function valueHeaders(b: Uint8Array, at: number, out: number[]): number {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = b[at];
  const length = view.getUint32(at + 1);
  out.push(at);
  const start = at + 5;
  const stop = start + length;
  if (tag === Tag.LIST) {
    for (let p = start; p < stop;) p = valueHeaders(b, p, out);
  } else if (tag === Tag.DICT) {
    for (let p = start; p < stop;) p = valueHeaders(b, p + 1 + b[p], out);
  }
  return stop;
}

function messageValueHeaders(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 0; at < b.length;) at = valueHeaders(b, at + 8, out);
  return out;
}

function frameHeaders(b: Uint8Array): number[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let at = 0; at + 4 <= b.length; at += 4 + view.getUint32(at)) out.push(at);
  return out;
}

/** Offsets where a u32 length field starts. */
type LengthFields = number[];

function randomLength(rng: Prng, old: number, remaining: number): number {
  switch (rng.int(0, 4)) {
    case 0:
      return rng.u32();
    case 1:
      return rng.pick([0, 1, 15, 16, 17, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff]);
    case 2:
      return Math.max(0, old + rng.pick([-2, -1, 1, 2]));
    case 3:
      return Math.max(0, remaining + rng.int(-1, 1));
    default:
      return rng.int(0, 300);
  }
}

/** Applies 1 to 3 random mutations to a copy of `valid`. */
function mutate(rng: Prng, valid: Uint8Array, lengthFields: LengthFields): Uint8Array {
  let b = valid.slice();
  const rounds = rng.int(1, 3);
  for (let r = 0; r < rounds; r++) {
    const kind = rng.int(0, 6);
    if (kind === 0 && b.length > 0) {
      // bit flips
      const flips = rng.int(1, 4);
      for (let i = 0; i < flips; i++) b[rng.int(0, b.length - 1)] ^= 1 << rng.int(0, 7);
    } else if (kind === 1) {
      // byte insertion
      const at = rng.int(0, b.length);
      const extra = rng.bytes(rng.int(1, 4));
      const next = new Uint8Array(b.length + extra.length);
      next.set(b.subarray(0, at));
      next.set(extra, at);
      next.set(b.subarray(at), at + extra.length);
      b = next;
    } else if (kind === 2 && b.length > 0) {
      // byte deletion
      const at = rng.int(0, b.length - 1);
      const n = Math.min(rng.int(1, 4), b.length - at);
      const next = new Uint8Array(b.length - n);
      next.set(b.subarray(0, at));
      next.set(b.subarray(at + n), at);
      b = next;
    } else if (kind === 3 && lengthFields.length > 0) {
      // overwrite a length field (positions are from the valid encoding; earlier rounds may
      // have shifted them, which is just more mutation)
      const at = rng.pick(lengthFields);
      if (at + 4 <= b.length) {
        const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
        view.setUint32(at, randomLength(rng, view.getUint32(at), b.length - at - 4));
      }
    } else if (kind === 4) {
      // truncation
      b = b.slice(0, rng.int(0, b.length));
    } else if (kind === 5 && lengthFields.length > 0) {
      // retag a value (the tag sits just before a value's length field)
      const at = rng.pick(lengthFields) - 1;
      if (at >= 0 && at < b.length) b[at] = rng.chance(0.7) ? rng.int(0, 7) : rng.u32() & 0xff;
    } else if (b.length > 0) {
      // overwrite a random byte with an edge value
      b[rng.int(0, b.length - 1)] = rng.pick([0, 1, 2, 0x7f, 0x80, 0xc0, 0xed, 0xff]);
    }
  }
  return b;
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
    const input = mutate(rng, stream, frameHeaders(stream));
    const result = runFrames(rng, input, where);
    // whatever opened must be one of the sealed plaintexts, in order: no forgery got through
    for (let p = 0; p < result.plaintexts.length; p++) {
      assert.deepStrictEqual(result.plaintexts[p], plaintexts[p], `${where}: frame ${p} forged`);
    }
    if (result.error instanceof FrameAuthError) authFailures++;
  }
  assert.ok(intact > 0 && authFailures > 0, `intact ${intact}, failures ${authFailures}`);
});
