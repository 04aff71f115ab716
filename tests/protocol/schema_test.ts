/**
 * The body schema language: bounds, shapes, optional fields, and error paths.
 */

import assert from "node:assert/strict";
import { SchemaError } from "../../src/protocol/errors.ts";
import * as s from "../../src/protocol/schema.ts";
import { decodeValue, encodeValue, type Value } from "../../src/protocol/value.ts";

function assertSchemaError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SchemaError, `expected SchemaError, got ${e}`);
    assert.equal(e.name, "SchemaError");
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("str() accepts lengths inside its bounds, inclusive", () => {
  const name = s.str(2, 4);
  assert.equal(name.check("ab", ""), "ab");
  assert.equal(name.check("abcd", ""), "abcd");
  assert.equal(s.str().check("", ""), "");
});

Deno.test("str() rejects a string shorter or longer than its bounds", () => {
  const name = s.str(2, 4);
  assertSchemaError(
    () => name.check("a", ""),
    /^body must be a str of 2 to 4 characters, got str$/,
  );
  assertSchemaError(() => name.check("abcde", ".name"), /^\.name must be a str of 2 to 4/);
  assertSchemaError(() => name.check("", ""), /got str/);
});

Deno.test("str() counts UTF-16 code units, so an emoji is two", () => {
  assert.equal(s.str(0, 2).check("😀", ""), "😀");
  assertSchemaError(() => s.str(0, 1).check("😀", ""), /a str of 0 to 1/);
});

Deno.test("str() rejects every non-string kind and names it", () => {
  const cases: [Value, string][] = [
    [null, "null"],
    [1, "int"],
    [true, "bool"],
    [[], "list"],
    [{}, "dict"],
    [new Uint8Array(1), "bytes"],
    [new Date(0), "datetime"],
  ];
  for (const [v, kind] of cases) {
    assertSchemaError(() => s.str().check(v, ""), new RegExp(`got ${kind}$`));
  }
});

Deno.test("int() accepts its bounds and rejects values just outside them", () => {
  const small = s.int(-3, 10);
  assert.equal(small.check(-3, ""), -3);
  assert.equal(small.check(10, ""), 10);
  assert.equal(small.check(0, ""), 0);
  assertSchemaError(() => small.check(-4, ""), /^body must be an int from -3 to 10, got int$/);
  assertSchemaError(() => small.check(11, ""), /an int from -3 to 10/);
  assertSchemaError(() => small.check("5", ""), /got str/);
});

Deno.test("int() without bounds accepts the safe extremes", () => {
  assert.equal(s.int().check(Number.MAX_SAFE_INTEGER, ""), Number.MAX_SAFE_INTEGER);
  assert.equal(s.int().check(Number.MIN_SAFE_INTEGER, ""), Number.MIN_SAFE_INTEGER);
});

Deno.test("bool, nul and datetime accept only their own kind", () => {
  assert.equal(s.bool.check(false, ""), false);
  assert.equal(s.nul.check(null, ""), null);
  const d = new Date(5);
  assert.equal(s.datetime.check(d, ""), d);
  assertSchemaError(() => s.bool.check(0, ""), /must be bool, got int/);
  assertSchemaError(() => s.nul.check(false, ""), /must be null, got bool/);
  assertSchemaError(() => s.datetime.check(5, ""), /must be datetime, got int/);
});

Deno.test("bytes() enforces its maximum length", () => {
  const token = s.bytes(4);
  assert.deepEqual(token.check(new Uint8Array(4), ""), new Uint8Array(4));
  assertSchemaError(() => token.check(new Uint8Array(5), ".token"), /\.token must be bytes/);
  assertSchemaError(() => token.check("abcd", ""), /got str/);
});

Deno.test("tuple() accepts the right length and checks each position", () => {
  const creds = s.tuple(s.str(1, 8), s.int(0, 9));
  assert.deepEqual(creds.check(["bob", 3], ""), ["bob", 3]);
  assertSchemaError(() => creds.check(["bob", 10], ""), /^\[1\] must be an int from 0 to 9/);
  assertSchemaError(() => creds.check(["", 1], ".c"), /^\.c\[0\] must be a str/);
});

Deno.test("tuple() rejects a list that is too short or too long", () => {
  const creds = s.tuple(s.str(), s.str());
  assertSchemaError(() => creds.check(["a"], ""), /^body must be \[str, str\], got list$/);
  assertSchemaError(() => creds.check(["a", "b", "c"], ""), /must be \[str, str\]/);
  assertSchemaError(() => creds.check([], ""), /must be \[str, str\]/);
  assertSchemaError(() => creds.check({ 0: "a", 1: "b" }, ""), /got dict/);
});

Deno.test("list() names the failing item's index in the error path", () => {
  const body = s.dict({ items: s.list(s.str()) });
  assertSchemaError(
    () => body.check({ items: ["a", "b", 3] }, ""),
    /^\.items\[2\] must be a str of 0 to \d+ characters, got int$/,
  );
  assertSchemaError(
    () => s.list(s.list(s.int())).check([[1], [2, "x"]], ""),
    /^\[1\]\[1\] must be an int/,
  );
});

Deno.test("list() enforces its maximum item count", () => {
  const few = s.list(s.int(), 2);
  assert.deepEqual(few.check([1, 2], ""), [1, 2]);
  assertSchemaError(() => few.check([1, 2, 3], ""), /list\[int\] of at most 2 items, got list/);
});

Deno.test("dict() rejects a missing required field and names it", () => {
  const body = s.dict({ code: s.int(), message: s.str() });
  assertSchemaError(() => body.check({ code: 1 }, ""), /^body is missing the field "message"$/);
  assertSchemaError(
    () => s.dict({ inner: body }).check({ inner: { message: "m" } }, ""),
    /^\.inner is missing the field "code"$/,
  );
});

Deno.test("dict() rejects a non-dict and reports a bad field's path", () => {
  const body = s.dict({ code: s.int() });
  assertSchemaError(() => body.check([1], ""), /^body must be a dict \{code\}, got list$/);
  assertSchemaError(() => body.check(null, ""), /got null/);
  assertSchemaError(() => body.check(new Date(0), ""), /got datetime/);
  assertSchemaError(() => body.check({ code: "1" }, ""), /^\.code must be an int/);
});

Deno.test("dict() drops unknown fields and returns only the known ones", () => {
  const body = s.dict({ a: s.int() });
  const out = body.check({ a: 1, extra: "ignored" }, "");
  assert.deepEqual(out, { a: 1 });
});

Deno.test("dict() reads an absent or null optional field as undefined", () => {
  const body = s.dict({ name: s.str(), token: s.optional(s.bytes(32)) });
  const absent = body.check({ name: "x" }, "");
  assert.equal(absent.token, undefined);
  assert.ok(Object.hasOwn(absent, "token"));
  assert.equal(body.check({ name: "x", token: null }, "").token, undefined);
  const t = new Uint8Array(32);
  assert.equal(body.check({ name: "x", token: t }, "").token, t);
  assertSchemaError(() => body.check({ name: "x", token: "t" }, ""), /^\.token must be bytes/);
});

Deno.test("optional() outside a dict accepts null and checks anything else", () => {
  const maybe = s.optional(s.str(0, 3));
  assert.equal(maybe.check(null, ""), undefined);
  assert.equal(maybe.check("abc", ""), "abc");
  assert.equal(maybe.describe, "str?");
  assertSchemaError(() => maybe.check("abcd", ""), /a str of 0 to 3/);
});

Deno.test("dict() does not treat an inherited property as a present field", () => {
  const body = s.dict({ toString: s.str() });
  assertSchemaError(() => body.check({}, ""), /missing the field "toString"/);
});

Deno.test("dict() checks a decoded dict whose key is __proto__ as plain data", () => {
  const decoded = decodeValue(
    Uint8Array.fromHex("040000000f" + "095f5f70726f746f5f5f" + "0000000000"),
  );
  const body = s.dict({ a: s.optional(s.int()) });
  assert.deepEqual(body.check(decoded, ""), { a: undefined });
  assert.ok(Object.hasOwn(decoded as object, "__proto__"));
  assert.deepEqual(decodeValue(encodeValue(decoded)), decoded);
});

Deno.test("any accepts every value unchanged", () => {
  const v = { x: [1, null] };
  assert.equal(s.any.check(v, ""), v);
});

Deno.test("kindOf() names every wire kind", () => {
  assert.deepEqual(
    [null, true, 1, "s", new Uint8Array(0), new Date(0), [], {}].map(s.kindOf),
    ["null", "bool", "int", "str", "bytes", "datetime", "list", "dict"],
  );
});

Deno.test("describe strings nest for lists, tuples and dicts", () => {
  assert.equal(s.list(s.str()).describe, "list[str]");
  assert.equal(s.tuple(s.str(), s.int()).describe, "[str, int]");
  assert.equal(s.dict({ a: s.int(), b: s.bool }).describe, "{a, b}");
});
