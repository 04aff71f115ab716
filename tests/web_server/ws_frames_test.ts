import assert from "node:assert/strict";
import {
  acceptKey,
  closePayload,
  encodeFrame,
  frameHeader,
  isClientKey,
  parseFrameHeader,
  unmask,
  WebSocketProtocolError,
} from "../../src/server/web/ws_frames.ts";
import { clientFrame } from "./web_helpers.ts";

Deno.test("acceptKey() gives RFC 6455's example answer", () => {
  assert.equal(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert.ok(isClientKey("dGhlIHNhbXBsZSBub25jZQ=="));
  assert.ok(!isClientKey("dGhlIHNhbXBsZSBub25jZQ"));
  assert.ok(!isClientKey(undefined));
});

Deno.test("parseFrameHeader() reads the three length forms, and waits for a whole header", () => {
  for (const length of [0, 125, 126, 65535, 65536, 70000]) {
    const frame = clientFrame(0x2, new Uint8Array(length), { fin: length % 2 === 0 });
    const headerBytes = 2 + (length < 126 ? 0 : length < 65536 ? 2 : 8) + 4;
    for (let end = 0; end < headerBytes; end++) {
      assert.equal(parseFrameHeader(frame, 0, end), null, `length ${length}, ${end} bytes`);
    }
    const h = parseFrameHeader(frame, 0, frame.length)!;
    assert.equal(h.length, length);
    assert.equal(h.headerBytes, headerBytes);
    assert.equal(h.opcode, 0x2);
    assert.equal(h.fin, length % 2 === 0);
    assert.equal(h.mask?.length, 4);
    // The server's own headers read back the same (unmasked).
    const own = parseFrameHeader(frameHeader(0x2, length), 0, 14)!;
    assert.equal(own.length, length);
    assert.equal(own.mask, null);
  }
  const huge = new Uint8Array([0x82, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  assert.throws(() => parseFrameHeader(huge, 0, huge.length), WebSocketProtocolError);
});

Deno.test("unmask() continues the mask at any position, and encodeFrame() frames a payload", () => {
  const data = new TextEncoder().encode("the quick brown fox");
  const frame = clientFrame(0x2, data);
  const h = parseFrameHeader(frame, 0, frame.length)!;
  const payload = frame.slice(h.headerBytes);
  unmask(payload.subarray(0, 5), h.mask!, 0);
  unmask(payload.subarray(5), h.mask!, 5);
  assert.deepEqual(payload, data);
  const out = encodeFrame(0x2, data);
  assert.deepEqual([...out.subarray(0, 2)], [0x82, data.length]);
  assert.deepEqual(out.subarray(2), data);
  assert.deepEqual([...closePayload(1003, "no")], [0x03, 0xeb, 0x6e, 0x6f]);
  assert.equal(closePayload(1000, "x".repeat(300)).length, 125);
});
