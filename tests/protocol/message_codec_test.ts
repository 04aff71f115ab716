/**
 * The message layer: `type u32 | id u32 | value`, several back to back in one plaintext.
 */

import assert from "node:assert/strict";
import { DecodeError } from "../../src/protocol/errors.ts";
import {
  decodeMessages,
  encodeMessages,
  MAX_REQUEST_ID,
  type Message,
  MESSAGE_HEADER_BYTES,
} from "../../src/protocol/message_codec.ts";
import { encodeValue, Tag } from "../../src/protocol/value.ts";
import { concat } from "../helpers/bytes.ts";

function header(type: number, id: number): Uint8Array {
  const out = new Uint8Array(MESSAGE_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, type);
  view.setUint32(4, id);
  return out;
}

const sample: Message[] = [
  { type: 1, id: 1, body: ["alice", "hunter2"] },
  { type: 13, id: 2, body: 2 },
  { type: 6, id: 0xffff_fffe, body: { to: "bob", text: "héllo 😀", at: new Date(1e12) } },
  { type: 0xffff_ffff, id: 0, body: null },
  { type: 204, id: 5, body: new Uint8Array([1, 2, 3]) },
];

Deno.test("decodeMessages() round trips several messages in one plaintext", () => {
  const decoded = decodeMessages(encodeMessages(sample));
  assert.equal(decoded.error, undefined);
  assert.deepEqual(decoded.messages, sample);
});

Deno.test("decodeMessages() round trips a single message", () => {
  const one = [{ type: 13, id: MAX_REQUEST_ID, body: 7 }];
  assert.deepEqual(decodeMessages(encodeMessages(one)), { messages: one });
});

Deno.test("encodeMessages() writes type and id as big-endian u32 before the body", () => {
  const bytes = encodeMessages([{ type: 0x0102_0304, id: 0x0a0b_0c0d, body: true }]);
  assert.equal(bytes.toHex(), "01020304" + "0a0b0c0d" + "050000000101");
  const two = encodeMessages([{ type: 1, id: 2, body: null }, { type: 3, id: 4, body: null }]);
  assert.equal(two.toHex(), "00000001000000020000000000" + "00000003000000040000000000");
});

Deno.test("decodeMessages() reports an empty plaintext as an error", () => {
  const decoded = decodeMessages(new Uint8Array(0));
  assert.deepEqual(decoded.messages, []);
  assert.ok(decoded.error);
  assert.equal(decoded.error.id, 0);
  assert.ok(decoded.error.cause instanceof DecodeError);
  assert.match(decoded.error.cause.message, /no message/);
});

Deno.test("decodeMessages() keeps the first message and reports a malformed second's id", () => {
  const first = encodeMessages([{ type: 13, id: 1, body: "ok" }]);
  const bad = concat(header(13, 77), [Tag.BOOL, 0, 0, 0, 1, 2]); // bool byte 2
  const decoded = decodeMessages(concat(first, bad));
  assert.deepEqual(decoded.messages, [{ type: 13, id: 1, body: "ok" }]);
  assert.ok(decoded.error);
  assert.equal(decoded.error.id, 77);
  assert.ok(decoded.error.cause instanceof DecodeError);
  assert.match(decoded.error.cause.message, /Bool/);
});

Deno.test("decodeMessages() stops at a malformed message and drops the ones after it", () => {
  const ok = (id: number) => encodeMessages([{ type: 13, id, body: id }]);
  const bad = concat(header(13, 2), [0xee, 0, 0, 0, 0]); // unknown tag
  const decoded = decodeMessages(concat(ok(1), bad, ok(3)));
  assert.deepEqual(decoded.messages.map((m) => m.id), [1]);
  assert.equal(decoded.error?.id, 2);
  assert.match(decoded.error!.cause.message, /Unknown value tag 238/);
});

Deno.test("decodeMessages() reports a body whose length runs past the plaintext", () => {
  const bad = concat(header(6, 9), [Tag.STR, 0xff, 0xff, 0xff, 0xff, 0x61]);
  const decoded = decodeMessages(bad);
  assert.deepEqual(decoded.messages, []);
  assert.equal(decoded.error?.id, 9);
  assert.ok(decoded.error?.cause instanceof DecodeError);
});

Deno.test("decodeMessages() reports a short message header after a good message", () => {
  const first = encodeMessages([{ type: 13, id: 1, body: null }]);
  for (let extra = 1; extra < MESSAGE_HEADER_BYTES; extra++) {
    const decoded = decodeMessages(concat(first, new Uint8Array(extra).fill(0xab)));
    assert.deepEqual(decoded.messages, [{ type: 13, id: 1, body: null }], `extra ${extra}`);
    assert.equal(decoded.error?.id, 0);
    assert.ok(decoded.error?.cause instanceof DecodeError);
    assert.match(decoded.error!.cause.message, /header needs 8 bytes at offset 13/);
  }
});

Deno.test("decodeMessages() reports a plaintext shorter than one header", () => {
  const decoded = decodeMessages(new Uint8Array([0, 0, 0, 1]));
  assert.deepEqual(decoded.messages, []);
  assert.equal(decoded.error?.id, 0);
  assert.match(decoded.error!.cause.message, /header needs 8 bytes at offset 0/);
});

Deno.test("decodeMessages() reports a header with no body", () => {
  const decoded = decodeMessages(header(13, 4));
  assert.deepEqual(decoded.messages, []);
  assert.equal(decoded.error?.id, 4);
  assert.match(decoded.error!.cause.message, /Value header needs 5 bytes/);
});

Deno.test("decodeMessages() applies the depth limit to each body", () => {
  const deep = encodeMessages([{ type: 1, id: 3, body: [[[]]] }]);
  assert.equal(decodeMessages(deep, 3).error, undefined);
  const decoded = decodeMessages(deep, 2);
  assert.equal(decoded.error?.id, 3);
  assert.match(decoded.error!.cause.message, /nested too deeply/);
});

Deno.test("decodeMessages() honours a subarray's byte offset", () => {
  const encoded = encodeMessages(sample);
  const padded = concat([1, 2, 3], encoded, [4, 5]);
  const decoded = decodeMessages(padded.subarray(3, 3 + encoded.length));
  assert.deepEqual(decoded, { messages: sample });
});

Deno.test("encodeMessages() propagates a TypeError for an unencodable body", () => {
  assert.throws(() => encodeMessages([{ type: 1, id: 1, body: 0.5 }]), TypeError);
});

Deno.test("decodeMessages() keeps the body that a value encodes to", () => {
  const body = { nested: [1, { k: "v" }] };
  const bytes = concat(header(42, 43), encodeValue(body));
  assert.deepEqual(decodeMessages(bytes), { messages: [{ type: 42, id: 43, body }] });
});

Deno.test("encodeMessages() refuses a type or id that does not fit in a u32", () => {
  assert.throws(() => encodeMessages([{ type: 2 ** 32, id: 1, body: null }]), RangeError);
  assert.throws(() => encodeMessages([{ type: 1, id: -1, body: null }]), RangeError);
  assert.throws(() => encodeMessages([{ type: 1, id: 1.5, body: null }]), RangeError);
});
