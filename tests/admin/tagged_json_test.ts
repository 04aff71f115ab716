/** The backup's JSON form of KV keys and values: every value comes back exactly. */

import assert from "node:assert/strict";
import { decodeKey, decodeValue, encodeKey, encodeValue } from "../../src/admin/tagged_json.ts";

/** Through text, as a backup line does. */
function roundTrip(value: unknown): unknown {
  return decodeValue(JSON.parse(JSON.stringify(encodeValue(value))));
}

Deno.test("encodeValue() and decodeValue() give back what Parley stores, through JSON text", () => {
  const values: unknown[] = [
    null,
    true,
    'text with "quotes", \n, emoji 😀 and a lone \ud800 surrogate',
    0,
    -0,
    1.5,
    NaN,
    Infinity,
    -Infinity,
    Number.MAX_SAFE_INTEGER,
    123456789012345678901234567890n,
    -5n,
    undefined,
    new Date("2026-11-23T12:00:00.123Z"),
    new Date(NaN),
    new Uint8Array([0, 1, 255]),
    new Uint8Array(0),
    new Deno.KvU64(18446744073709551615n),
    {
      name: "Alice",
      password: { alg: "scrypt", N: 1024, salt: new Uint8Array(16).fill(7) },
      created: new Date(0),
    },
    { message: { text: "hi", image: undefined }, blob: undefined, size: 64 },
    { $t: "not a tag", nested: { $t: 1 } },
    { ["__proto__"]: "a key, not a prototype" },
    [1, "two", [3, new Uint8Array([4])]],
    // deno-lint-ignore no-sparse-arrays
    [1, , 3],
    new Map<unknown, unknown>([["a", 1], [2n, new Date(5)]]),
    new Set([1, "x", new Uint8Array([9])]),
    /ab+c/gi,
    new Float64Array([1.5, -0, NaN]),
    new BigInt64Array([-1n, 2n]),
    new Uint8Array([1, 2, 3]).buffer,
  ];
  for (const value of values) {
    assert.deepStrictEqual(roundTrip(value), value, `round trip of ${Deno.inspect(value)}`);
  }
  const back = roundTrip(new Deno.KvU64(7n));
  assert.ok(back instanceof Deno.KvU64 && back.value === 7n);
  const sparse = roundTrip([1, , 3]) as unknown[]; // deno-lint-ignore no-sparse-arrays
  assert.equal(1 in sparse, false, "a hole stays a hole");
  const proto = roundTrip({ ["__proto__"]: "x" }) as object;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.ok(Object.hasOwn(proto, "__proto__"));
});

Deno.test("encodeKey() and decodeKey() keep every kind of key part", () => {
  const key: Deno.KvKey = ["inbox", "bob", 12, -0, 1.5, 99n, true, false, new Uint8Array([0, 7])];
  const back = decodeKey(JSON.parse(JSON.stringify(encodeKey(key))));
  assert.deepStrictEqual(back, key);
  assert.ok(Object.is(back[3], -0));
});

Deno.test("decodeValue() and decodeKey() reject what no backup holds", () => {
  const bad: [unknown, RegExp][] = [
    [{ $t: "nope" }, /Unknown tag "nope"/],
    [{ $t: "bigint", v: "12x" }, /decimal integer/],
    [{ $t: "bigint" }, /needs a field "v"/],
    [{ $t: "u64", v: "-1" }, /out of range/],
    [{ $t: "bytes", v: "!!!" }, /invalid base64/],
    [{ $t: "bytes", v: "AA==", extra: 1 }, /unknown field "extra"/],
    [{ $t: "number", v: "5" }, /cannot be "5"/],
    [{ $t: "typed", type: "Int32Array", v: "AAA=" }, /Int32Array has 2 bytes/],
    [{ $t: "typed", type: "Window", v: "" }, /unknown type "Window"/],
    [{ $t: "map", v: [[1]] }, /list of pairs/],
    [{ $t: "regexp", v: "(", flags: "" }, /not a valid pattern/],
  ];
  for (const [json, pattern] of bad) assert.throws(() => decodeValue(json), pattern);
  assert.throws(() => decodeKey("user"), /list of parts/);
  assert.throws(() => decodeKey(["user", null]), /key part cannot be null/);
  assert.throws(() => decodeKey([{ $t: "date", v: 0 }]), /key part cannot be/);
});

Deno.test("encodeValue() refuses values KV cannot hold instead of losing them", () => {
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  assert.throws(() => encodeValue(loop), /contains itself/);
  assert.throws(() => encodeValue(() => 1), /type function/);
  assert.throws(() => encodeValue(new (class Point {})()), /Cannot encode a Point object/);
  // A value seen twice but not inside itself is fine.
  const shared = { a: 1 };
  assert.deepStrictEqual(roundTrip([shared, shared]), [{ a: 1 }, { a: 1 }]);
});
