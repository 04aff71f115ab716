/** WebSocketServerTransport on scripted input: every split of the bytes reads the same. */

import assert from "node:assert/strict";
import { encodeFrame, parseFrameHeader } from "../../src/server/web/ws_frames.ts";
import { WebSocketServerTransport } from "../../src/server/web/ws_transport.ts";
import { clientFrame, concat } from "./web_helpers.ts";

/** A stand-in for Deno.Conn: reads hand out `input` in the given chunk sizes; writes are kept. */
function scriptedConn(input: Uint8Array, chunkSizes: () => number) {
  let at = 0;
  const written: Uint8Array[] = [];
  let closed = false;
  const conn = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 5 },
    read(buf: Uint8Array): Promise<number | null> {
      if (closed) return Promise.reject(new Deno.errors.BadResource("closed"));
      if (at === input.length) return Promise.resolve(null);
      const n = Math.min(buf.length, chunkSizes(), input.length - at);
      buf.set(input.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write(bytes: Uint8Array): Promise<number> {
      written.push(bytes.slice());
      return Promise.resolve(bytes.length);
    },
    close() {
      closed = true;
    },
  };
  return { conn: conn as unknown as Deno.Conn, written };
}

/** Server frames in written bytes: [opcode, payload] each. */
function frames(written: Uint8Array[]): [number, Uint8Array][] {
  const all = concat(written);
  const out: [number, Uint8Array][] = [];
  for (let at = 0; at < all.length;) {
    const h = parseFrameHeader(all, at, all.length)!;
    out.push([h.opcode, all.slice(at + h.headerBytes, at + h.headerBytes + h.length)]);
    at += h.headerBytes + h.length;
  }
  return out;
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

/** A random source that repeats for a seed. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

Deno.test("WebSocketServerTransport.read() yields binary payload concatenated, at any split, and answers pings", async () => {
  const parts = [pattern(5, 1), pattern(300, 2), pattern(70_000, 3), pattern(1, 4), pattern(0, 5)];
  const input = concat([
    clientFrame(0x2, parts[0]),
    clientFrame(0x2, parts[1], { fin: false }),
    clientFrame(0x9, new Uint8Array([1, 2])),
    clientFrame(0x0, parts[2], { fin: false }),
    clientFrame(0xa, new Uint8Array(0)), // an unasked pong: ignored
    clientFrame(0x0, parts[3]),
    clientFrame(0x2, parts[4]),
    clientFrame(0x8, new Uint8Array([0x03, 0xe8])),
  ]);
  const expected = concat(parts);
  for (let seed = 1; seed <= 30; seed++) {
    const random = lcg(seed);
    const sizes = seed === 1 ? () => 1 : () => 1 + Math.floor(random() * 40);
    const { conn, written } = scriptedConn(input, sizes);
    const t = new WebSocketServerTransport(conn, { maxMessageBytes: 1 << 20 });
    const got: Uint8Array[] = [];
    while (true) {
      const buf = new Uint8Array(1 + Math.floor(random() * 500));
      const n = await t.read(buf);
      if (n === null) break;
      assert.ok(n > 0 && n <= buf.length);
      got.push(buf.slice(0, n));
    }
    assert.deepEqual(concat(got), expected, `seed ${seed}`);
    const sent = frames(written);
    assert.deepEqual(sent.map(([op]) => op), [0xa, 0x8], `seed ${seed}`);
    assert.deepEqual([...sent[0][1]], [1, 2]);
    assert.deepEqual([...sent[1][1]], [0x03, 0xe8]);
    assert.equal(await t.read(new Uint8Array(8)), null);
  }
});

Deno.test("WebSocketServerTransport.write() sends binary frames, closeWrite() a Close, then writes fail", async () => {
  const { conn, written } = scriptedConn(new Uint8Array(0), () => 1);
  const t = new WebSocketServerTransport(conn, { maxMessageBytes: 1024 });
  const big = pattern(300_000, 9);
  let at = 0;
  while (at < big.length) at += await t.write(big.subarray(at));
  await t.closeWrite();
  await assert.rejects(() => t.write(new Uint8Array(1)), /closing/);
  const sent = frames(written);
  assert.deepEqual(sent.map(([op]) => op), [0x2, 0x2, 0x8]);
  assert.deepEqual(concat(sent.slice(0, 2).map(([, p]) => p)), big);
  assert.deepEqual(encodeFrame(0x8, sent[2][1]).length, 4);
});

Deno.test("WebSocketServerTransport fails a message over maxMessageBytes across fragments with 1009", async () => {
  const input = concat([
    clientFrame(0x2, pattern(600, 1), { fin: false }),
    clientFrame(0x0, pattern(600, 2)),
  ]);
  const { conn, written } = scriptedConn(input, () => 4096);
  const faults: number[] = [];
  const t = new WebSocketServerTransport(conn, {
    maxMessageBytes: 1000,
    onFault: (e) => faults.push(e.code),
  });
  let total = 0;
  for (
    let n = await t.read(new Uint8Array(4096));
    n !== null;
    n = await t.read(new Uint8Array(4096))
  ) {
    total += n;
  }
  assert.equal(total, 600);
  assert.deepEqual(faults, [1009]);
  assert.deepEqual(frames(written).map(([op, p]) => [op, (p[0] << 8) | p[1]]), [[0x8, 1009]]);
});
