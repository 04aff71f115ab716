/**
 * The typed TLV value codec: round trips, exact byte layout, and every rejection path.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { DecodeError } from "../../src/protocol/errors.ts";
import {
  ByteWriter,
  decodeValue,
  DEFAULT_MAX_DEPTH,
  DictPieces,
  encodeEntries,
  encodeValue,
  ownBytes,
  portableLatin1View,
  readValue,
  SLAB_VALUE_MAX_BYTES,
  Tag,
  utf8Length,
  type Value,
  VALUE_HEADER_BYTES,
} from "../../src/protocol/value.ts";
import { concat } from "../helpers/bytes.ts";

const hex = (b: Uint8Array) => b.toHex();
const fromHex = (h: string) => Uint8Array.fromHex(h.replaceAll(" ", ""));

/** One raw value: tag u8 | length u32 BE | payload, with the length taken from the payload. */
function tlv(tag: number, payload: Uint8Array | number[] = []): Uint8Array {
  const p = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const out = new Uint8Array(VALUE_HEADER_BYTES + p.length);
  out[0] = tag;
  new DataView(out.buffer).setUint32(1, p.length);
  out.set(p, VALUE_HEADER_BYTES);
  return out;
}

/** A raw dict entry: key length u8 | key bytes | value. */
function entry(key: Uint8Array | string, value: Uint8Array): Uint8Array {
  const k = typeof key === "string" ? new TextEncoder().encode(key) : key;
  return concat([k.length], k, value);
}

/** The raw 8-byte payload of a signed 64-bit big-endian integer. */
function i64(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, n);
  return out;
}

function roundTrip(v: Value): Value {
  return decodeValue(encodeValue(v));
}

function assertDecodeError(bytes: Uint8Array, pattern?: RegExp, maxDepth?: number): void {
  assert.throws(
    () => decodeValue(bytes, maxDepth),
    (e: unknown) => {
      assert.ok(e instanceof DecodeError, `expected DecodeError, got ${e}`);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
  );
}

/** `depth` lists nested inside each other; the innermost holds `inner` (or nothing). */
function nestedLists(depth: number, inner?: Value): Value {
  let v: Value = inner === undefined ? [] : [inner];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
}

// ---------------------------------------------------------------------------------------------
// Round trips

Deno.test("decodeValue() round trips null and both bools", () => {
  assert.equal(roundTrip(null), null);
  assert.equal(roundTrip(true), true);
  assert.equal(roundTrip(false), false);
});

Deno.test("decodeValue() round trips ints: zero, negatives and the safe extremes", () => {
  for (
    const n of [
      0,
      1,
      -1,
      42,
      -42,
      255,
      256,
      0x7fff_ffff,
      0x8000_0000,
      0xffff_ffff,
      0x1_0000_0000,
      -0x8000_0000,
      -0x8000_0001,
      -0x1_0000_0000,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER - 1,
      Number.MIN_SAFE_INTEGER + 1,
    ]
  ) {
    assert.equal(roundTrip(n), n, `int ${n}`);
  }
});

Deno.test("decodeValue() round trips strings: empty, ASCII, CJK, emoji and a BOM", () => {
  for (
    const s of [
      "",
      "hello",
      "日本語のテキスト",
      "中文 한국어",
      "😀👍🏽🏳️‍🌈",
      "mixed: ä ß € 𝄞 😀 末",
      "\uFEFFleading BOM",
      "nul\u0000inside",
      "x".repeat(70_000),
    ]
  ) {
    assert.equal(roundTrip(s), s);
  }
});

Deno.test("decodeValue() round trips bytes, including empty and all 256 byte values", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(roundTrip(all), all);
  assert.deepEqual(roundTrip(new Uint8Array(0)), new Uint8Array(0));
  const decoded = roundTrip(new Uint8Array([1, 2, 3]));
  assert.ok(decoded instanceof Uint8Array);
});

Deno.test("decodeValue() returns bytes that do not alias the input buffer", () => {
  const encoded = encodeValue(new Uint8Array([1, 2, 3]));
  const decoded = decodeValue(encoded) as Uint8Array;
  encoded[VALUE_HEADER_BYTES] = 99;
  assert.deepEqual(decoded, new Uint8Array([1, 2, 3]));
});

Deno.test("small decoded bytes share a slab yet keep their values; ownBytes() cuts them free", () => {
  const ids = Array.from({ length: 600 }, (_, i) => new Uint8Array(SLAB_VALUE_MAX_BYTES).fill(i));
  const encoded = ids.map((id) => encodeValue(id));
  // 600 ids fill more than one slab: each keeps its bytes after the slab moves on.
  const decoded = encoded.map((e) => decodeValue(e) as Uint8Array);
  for (const e of encoded) e.fill(0xee);
  assert.deepEqual(decoded, ids);
  const view = decoded[0];
  assert.ok(view.buffer.byteLength > view.length, "a small value is a view of a shared buffer");
  const own = ownBytes(view);
  assert.deepEqual(own, view);
  assert.equal(own.buffer.byteLength, own.length);
  assert.equal(ownBytes(own), own, "a value that owns its buffer is not copied");
  // One byte more than the slab takes: a buffer of its own.
  const big = decodeValue(encodeValue(new Uint8Array(SLAB_VALUE_MAX_BYTES + 1))) as Uint8Array;
  assert.equal(big.buffer.byteLength, SLAB_VALUE_MAX_BYTES + 1);
});

Deno.test("decodeValue() round trips Dates to the millisecond, before and after the epoch", () => {
  for (
    const ms of [0, 1, -1, 1_700_000_000_123, -62_135_596_800_000, 8.64e15, -8.64e15]
  ) {
    const d = roundTrip(new Date(ms));
    assert.ok(d instanceof Date, `Date ${ms}`);
    assert.equal(d.getTime(), ms);
  }
});

Deno.test("decodeValue() round trips an empty list and an empty dict", () => {
  assert.deepEqual(roundTrip([]), []);
  assert.deepEqual(roundTrip({}), {});
  assert.ok(Array.isArray(roundTrip([])));
  assert.ok(!Array.isArray(roundTrip({})));
});

Deno.test("decodeValue() round trips nested lists and dicts holding every type", () => {
  const v: Value = {
    n: null,
    b: true,
    f: false,
    i: -123456789,
    s: "ünïcødé 😀",
    bytes: new Uint8Array([0, 255, 7]),
    when: new Date(1_234_567_890_123),
    list: [1, "two", [3, [4, {}]], { deep: [null, false, new Uint8Array(0)] }],
    dict: { a: { b: { c: [] } }, "键": "值", "🔑": 1 },
  };
  assert.deepEqual(roundTrip(v), v);
});

Deno.test("decodeValue() keeps dict key order", () => {
  const v = { zeta: 1, alpha: 2, mid: 3 };
  assert.deepEqual(Object.keys(roundTrip(v) as object), ["zeta", "alpha", "mid"]);
});

Deno.test("encodeValue() skips dict entries whose value is undefined", () => {
  const v = { a: 1, b: undefined } as unknown as Value;
  assert.deepEqual(decodeValue(encodeValue(v)), { a: 1 });
  assert.equal(hex(encodeValue(v)), hex(encodeValue({ a: 1 })));
});

Deno.test("encodeValue() accepts a dict key of exactly 255 UTF-8 bytes", () => {
  const key = "k".repeat(255);
  assert.deepEqual(roundTrip({ [key]: 1 }), { [key]: 1 });
  const multibyte = "é".repeat(127) + "k"; // 127 * 2 + 1 = 255 bytes
  assert.deepEqual(roundTrip({ [multibyte]: true }), { [multibyte]: true });
});

// ---------------------------------------------------------------------------------------------
// Exact byte layout

Deno.test("encodeValue() writes the documented bytes for small values", () => {
  assert.equal(hex(encodeValue(null)), "0000000000");
  assert.equal(hex(encodeValue(true)), "050000000101");
  assert.equal(hex(encodeValue(false)), "050000000100");
  assert.equal(hex(encodeValue(1)), "01000000080000000000000001");
  assert.equal(hex(encodeValue(-1)), "0100000008ffffffffffffffff");
  assert.equal(hex(encodeValue(Number.MAX_SAFE_INTEGER)), "0100000008001fffffffffffff");
  assert.equal(hex(encodeValue(Number.MIN_SAFE_INTEGER)), "0100000008ffe0000000000001");
  assert.equal(hex(encodeValue("hi")), "02000000026869");
  assert.equal(hex(encodeValue("é")), "0200000002c3a9");
  assert.equal(hex(encodeValue("")), "0200000000");
  assert.equal(hex(encodeValue(new Uint8Array([1, 2]))), "06000000020102");
  assert.equal(hex(encodeValue(new Date(0))), "07000000080000000000000000");
  assert.equal(hex(encodeValue(new Date(1000))), "070000000800000000000003e8");
  assert.equal(hex(encodeValue([])), "0300000000");
  assert.equal(hex(encodeValue({})), "0400000000");
});

Deno.test("encodeValue() writes list and dict payload lengths that cover their contents", () => {
  // [null, true]: 5 + 6 payload bytes
  assert.equal(hex(encodeValue([null, true])), "030000000b" + "0000000000" + "050000000101");
  // {a: null}: key length 1, "a", then the null
  assert.equal(hex(encodeValue({ a: null })), "0400000007" + "0161" + "0000000000");
  // {ab: [1]}
  assert.equal(
    hex(encodeValue({ ab: [1] })),
    "0400000015" + "026162" + "030000000d" + "01000000080000000000000001",
  );
});

Deno.test("decodeValue() reads hand-written bytes", () => {
  assert.deepEqual(decodeValue(fromHex("04 00000007 0161 0000000000")), { a: null });
  assert.equal(decodeValue(fromHex("01 00000008 fffffffffffffffe")), -2);
  assert.equal(decodeValue(fromHex("02 00000003 e4bda0")), "你");
});

Deno.test("ByteWriter grows past its initial size without losing bytes", () => {
  const w = new ByteWriter(1);
  for (let i = 0; i < 1000; i++) w.u8(i & 0xff);
  w.u32(0xdeadbeef);
  const out = w.finish();
  assert.equal(out.length, 1004);
  assert.equal(out[999], 999 & 0xff);
  assert.equal(hex(out.subarray(1000)), "deadbeef");
});

Deno.test("decodeValue() returns every dict key exactly, however many distinct keys it meets", () => {
  // Short ASCII keys go through a small shared table; colliding and similar keys must not mix.
  const keys: string[] = [];
  for (let i = 0; i < 3000; i++) keys.push(`k${i.toString(36)}`, `K${i}`, "ab".repeat(i % 20 + 1));
  keys.push("a".repeat(32), "a".repeat(33), "é", "ключ", "a\u00e9");
  const dict = Object.fromEntries([...new Set(keys)].map((k, i) => [k, i]));
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(roundTrip(dict), dict);
  }
  // The same bytes in two dicts, read one after the other, still give equal keys.
  assert.deepEqual(roundTrip([{ id: 1, type: "x" }, { id: 2, type: "y" }]), [
    { id: 1, type: "x" },
    { id: 2, type: "y" },
  ]);
});

Deno.test("DictPieces encode to exactly the bytes of the whole dict", () => {
  const id = new Uint8Array(16).fill(7);
  const whole = { id, seq: 42, time: new Date(1_700_000_000_000), data: "héllo", group_id: 3 };
  const head = encodeEntries({ id });
  const tail = encodeEntries({ time: whole.time, data: whole.data, group_id: 3 });
  const pieces = new DictPieces([head, { seq: 42 }, tail]);
  assert.equal(hex(encodeValue(pieces)), hex(encodeValue(whole)));
  assert.deepEqual(decodeValue(encodeValue({ list: [pieces, pieces] })), { list: [whole, whole] });
  // Another seq changes only the seq.
  assert.deepEqual(decodeValue(encodeValue(new DictPieces([head, { seq: 43 }, tail]))), {
    ...whole,
    seq: 43,
  });
});

Deno.test("utf8Length() agrees with TextEncoder, surrogates and all", () => {
  const samples = [
    "",
    "abc",
    "é",
    "ключ",
    "€",
    "😀",
    "a😀b",
    "\ud800",
    "\udc00x",
    "x\ud800",
    "\ud800\ud800",
  ];
  for (let i = 0; i < 200; i++) {
    samples.push(String.fromCharCode(...Array.from({ length: 8 }, () => Math.random() * 0x10000)));
  }
  for (const s of samples) assert.equal(utf8Length(s), new TextEncoder().encode(s).length, s);
});

Deno.test("encodeValue() refuses a lone surrogate in a dict key as in a str", () => {
  assert.throws(() => encodeValue({ ["a\ud800"]: 1 }), /lone surrogate/);
  assert.throws(() => encodeValue("b\udc00"), /lone surrogate/);
});

// ---------------------------------------------------------------------------------------------
// __proto__ and friends

Deno.test("decodeValue() keeps a dict key __proto__ as an own data property", () => {
  const bytes = tlv(Tag.DICT, entry("__proto__", encodeValue({ polluted: true })));
  const d = decodeValue(bytes) as Record<string, Value>;
  assert.equal(Object.getPrototypeOf(d), Object.prototype);
  assert.ok(Object.hasOwn(d, "__proto__"));
  assert.deepEqual(Object.getOwnPropertyDescriptor(d, "__proto__")?.value, { polluted: true });
  assert.equal((d as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(Object.keys(d), ["__proto__"]);
});

Deno.test("decodeValue() keeps __proto__, constructor and prototype keys as plain data", () => {
  const bytes = tlv(
    Tag.DICT,
    concat(
      entry("constructor", encodeValue(1)),
      entry("__proto__", encodeValue([])),
      entry("prototype", encodeValue("p")),
      entry("hasOwnProperty", encodeValue(null)),
    ),
  );
  const d = decodeValue(bytes) as Record<string, Value>;
  assert.equal(Object.getPrototypeOf(d), Object.prototype);
  assert.deepEqual(Object.keys(d), ["constructor", "__proto__", "prototype", "hasOwnProperty"]);
  assert.equal(d.constructor, 1);
  assert.equal(d.hasOwnProperty, null);
  // and it re-encodes to the same bytes
  assert.equal(hex(encodeValue(d)), hex(bytes));
});

// ---------------------------------------------------------------------------------------------
// Rejections

Deno.test("decodeValue() rejects empty input", () => {
  assertDecodeError(new Uint8Array(0), /header/);
});

Deno.test("decodeValue() rejects a truncated header", () => {
  for (let n = 1; n < VALUE_HEADER_BYTES; n++) {
    assertDecodeError(encodeValue(null).subarray(0, n), /header/);
  }
});

Deno.test("decodeValue() rejects a length past the end", () => {
  assertDecodeError(fromHex("02 00000005 6869"), /exceeds/);
  assertDecodeError(fromHex("06 ffffffff"), /exceeds/);
  assertDecodeError(encodeValue("hello").subarray(0, 9), /exceeds/);
});

Deno.test("decodeValue() rejects a nested length past its parent's end", () => {
  // a list of 6 bytes holding a str that claims 2 bytes but the list ends after 1
  const inner = fromHex("02 00000002 6869");
  const bytes = concat([Tag.LIST, 0, 0, 0, 6], inner); // list payload length 6 < 7
  assertDecodeError(bytes);
});

Deno.test("decodeValue() rejects an unknown tag", () => {
  for (const tag of [8, 9, 0x7f, 0x80, 0xff]) {
    assertDecodeError(tlv(tag), new RegExp(`Unknown value tag ${tag}`));
  }
});

Deno.test("decodeValue() rejects a bool byte other than 0 or 1", () => {
  assertDecodeError(tlv(Tag.BOOL, [2]), /Bool/);
  assertDecodeError(tlv(Tag.BOOL, [0xff]), /Bool/);
});

Deno.test("decodeValue() rejects fixed-size values with the wrong length", () => {
  assertDecodeError(tlv(Tag.NULL, [0]), /expected 0/);
  assertDecodeError(tlv(Tag.BOOL, []), /expected 1/);
  assertDecodeError(tlv(Tag.BOOL, [1, 0]), /expected 1/);
  assertDecodeError(tlv(Tag.INT, [0, 0, 0, 0]), /expected 8/);
  assertDecodeError(tlv(Tag.INT, new Uint8Array(9)), /expected 8/);
  assertDecodeError(tlv(Tag.DATETIME, new Uint8Array(7)), /expected 8/);
});

Deno.test("decodeValue() rejects an int outside the safe range", () => {
  for (
    const n of [
      2n ** 53n,
      -(2n ** 53n),
      2n ** 53n + 1n,
      -(2n ** 53n) - 1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
    ]
  ) {
    assertDecodeError(tlv(Tag.INT, i64(n)), /safe integer/);
  }
  // the extremes themselves pass
  assert.equal(decodeValue(tlv(Tag.INT, i64(2n ** 53n - 1n))), Number.MAX_SAFE_INTEGER);
  assert.equal(decodeValue(tlv(Tag.INT, i64(-(2n ** 53n) + 1n))), Number.MIN_SAFE_INTEGER);
});

Deno.test("decodeValue() rejects a datetime outside the Date range", () => {
  assertDecodeError(tlv(Tag.DATETIME, i64(8_640_000_000_000_001n)), /out of range/);
  assertDecodeError(tlv(Tag.DATETIME, i64(-8_640_000_000_000_001n)), /out of range/);
  assertDecodeError(tlv(Tag.DATETIME, i64(2n ** 60n)), /safe integer/);
});

Deno.test("decodeValue() rejects invalid UTF-8 in a str", () => {
  for (
    const bad of [
      [0xff],
      [0xc0, 0xaf], // overlong "/"
      [0xe0, 0x80, 0xaf], // overlong 3-byte
      [0xed, 0xa0, 0x80], // lone high surrogate U+D800
      [0xed, 0xbf, 0xbf], // lone low surrogate U+DFFF
      [0xc3], // truncated 2-byte sequence
      [0x80], // stray continuation byte
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0x61, 0xf0, 0x9f, 0x98], // truncated emoji after a valid byte
    ]
  ) {
    assertDecodeError(tlv(Tag.STR, bad), /UTF-8/);
  }
});

Deno.test("decodeValue() rejects invalid UTF-8 in a dict key", () => {
  assertDecodeError(tlv(Tag.DICT, entry(new Uint8Array([0xc0, 0xaf]), encodeValue(null))), /UTF-8/);
  assertDecodeError(
    tlv(Tag.DICT, entry(new Uint8Array([0xed, 0xa0, 0x80]), encodeValue(null))),
    /UTF-8/,
  );
});

Deno.test("decodeValue() rejects an empty dict key", () => {
  assertDecodeError(tlv(Tag.DICT, concat([0], encodeValue(null))), /Empty dict key/);
});

Deno.test("decodeValue() rejects a dict key length past the end of the dict", () => {
  assertDecodeError(tlv(Tag.DICT, [5, 0x61, 0x62]), /runs past/);
  // a key that exactly fills the dict, leaving no room for its value
  assertDecodeError(tlv(Tag.DICT, [2, 0x61, 0x62]), /header/);
});

Deno.test("decodeValue() rejects a duplicate dict key", () => {
  const bytes = tlv(Tag.DICT, concat(entry("a", encodeValue(1)), entry("a", encodeValue(2))));
  assertDecodeError(bytes, /Duplicate dict key "a"/);
  const proto = tlv(
    Tag.DICT,
    concat(entry("__proto__", encodeValue(1)), entry("__proto__", encodeValue(2))),
  );
  assertDecodeError(proto, /Duplicate/);
});

Deno.test("decodeValue() rejects trailing bytes after the value", () => {
  assertDecodeError(concat(encodeValue(1), [0]), /1 trailing bytes/);
  assertDecodeError(concat(encodeValue(null), encodeValue(null)), /trailing/);
});

Deno.test("readValue() returns the offset after the value and allows bytes after it", () => {
  const bytes = concat([9, 9], encodeValue("ab"), encodeValue(true));
  const [v, next] = readValue(bytes, 2, bytes.length);
  assert.equal(v, "ab");
  assert.equal(next, 2 + 7);
  const [b, end] = readValue(bytes, next, bytes.length);
  assert.equal(b, true);
  assert.equal(end, bytes.length);
});

Deno.test("readValue() honours a subarray's byte offset", () => {
  const outer = concat([0xff, 0xff, 0xff], encodeValue(-5));
  const view = outer.subarray(3);
  assert.equal(decodeValue(view), -5);
});

Deno.test("decodeValue() accepts nesting exactly at the depth limit", () => {
  assert.deepEqual(
    decodeValue(encodeValue(nestedLists(DEFAULT_MAX_DEPTH))),
    nestedLists(DEFAULT_MAX_DEPTH),
  );
  // a scalar counts as one level too: 15 lists and an int is 16 levels
  assert.deepEqual(
    decodeValue(encodeValue(nestedLists(DEFAULT_MAX_DEPTH - 1, 7))),
    nestedLists(DEFAULT_MAX_DEPTH - 1, 7),
  );
});

Deno.test("decodeValue() rejects nesting deeper than the limit", () => {
  assertDecodeError(encodeValue(nestedLists(DEFAULT_MAX_DEPTH + 1)), /nested too deeply/);
  assertDecodeError(encodeValue(nestedLists(DEFAULT_MAX_DEPTH, 7)), /nested too deeply/);
  assertDecodeError(encodeValue(nestedLists(1000)), /nested too deeply/);
  let dicts: Value = {};
  for (let i = 0; i < DEFAULT_MAX_DEPTH; i++) dicts = { d: dicts };
  assertDecodeError(encodeValue(dicts), /nested too deeply/);
});

Deno.test("decodeValue() applies a custom depth limit", () => {
  assert.deepEqual(decodeValue(encodeValue([[]]), 2), [[]]);
  assertDecodeError(encodeValue([[]]), /nested too deeply/, 1);
  assertDecodeError(encodeValue(null), /nested too deeply/, 0);
  assert.equal(decodeValue(encodeValue(null), 1), null);
});

// ---------------------------------------------------------------------------------------------
// Encoder refusals

Deno.test("encodeValue() throws TypeError for numbers that are not safe integers", () => {
  for (const n of [1.5, -0.25, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53)]) {
    assert.throws(() => encodeValue(n), TypeError, `number ${n}`);
    assert.throws(() => encodeValue([1, { x: n }]), TypeError, `nested number ${n}`);
  }
});

Deno.test("encodeValue() throws TypeError for undefined at the top or in a list", () => {
  assert.throws(() => encodeValue(undefined as unknown as Value), TypeError);
  assert.throws(() => encodeValue([1, undefined] as unknown as Value), TypeError);
});

Deno.test("encodeValue() throws TypeError for a function, symbol or bigint", () => {
  assert.throws(() => encodeValue((() => 1) as unknown as Value), TypeError);
  assert.throws(() => encodeValue({ f: () => 1 } as unknown as Value), TypeError);
  assert.throws(() => encodeValue(Symbol("s") as unknown as Value), TypeError);
  assert.throws(() => encodeValue(1n as unknown as Value), TypeError);
});

Deno.test("encodeValue() throws TypeError for an invalid Date", () => {
  assert.throws(() => encodeValue(new Date(NaN)), TypeError);
  assert.throws(() => encodeValue({ when: new Date("not a date") }), TypeError);
});

Deno.test("encodeValue() throws TypeError for a dict key over 255 bytes or empty", () => {
  assert.throws(() => encodeValue({ ["k".repeat(256)]: 1 }), TypeError);
  assert.throws(() => encodeValue({ ["é".repeat(128)]: 1 }), TypeError); // 256 bytes
  assert.throws(() => encodeValue({ "": 1 }), TypeError);
});

Deno.test("encodeValue() throws TypeError for a string with a lone surrogate", () => {
  assert.throws(() => encodeValue("ok \ud800 not ok"), TypeError);
  assert.throws(() => encodeValue({ k: ["\udfff"] }), TypeError);
  assert.equal(decodeValue(encodeValue("pair 😀 fine")), "pair 😀 fine");
});

Deno.test("the portable Latin-1 view decodes ASCII as node's Buffer does, long runs included", () => {
  for (const n of [0, 1, 17, 4095, 4096, 4097, 20_000]) {
    const bytes = new Uint8Array(n + 6).map((_, i) => 32 + (i * 7) % 95);
    const want = Buffer.from(bytes.buffer).toString("latin1", 3, n + 3);
    assert.equal(portableLatin1View(bytes).toString("latin1", 3, n + 3), want, `${n} bytes`);
  }
});
