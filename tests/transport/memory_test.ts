/** memoryPair(): the in-memory transport behaves like a TCP connection where the channel cares. */

import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { memoryPair } from "../../src/transport/memory.ts";
import { ConnectionGone, writeAll } from "../../src/transport/transport.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
/** Lets every promise that can settle settle, and one turn of the event loop pass. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Reads until the peer's end of stream; what arrived, in order. */
async function readToEnd(t: { read(buf: Uint8Array): Promise<number | null> }, size = 7) {
  const got: number[] = [];
  const buf = new Uint8Array(size);
  for (let n; (n = await t.read(buf)) !== null;) got.push(...buf.subarray(0, n));
  return got;
}

Deno.test("memoryPair() carries bytes both ways, in order, into the reader's buffer", async () => {
  const [a, b] = memoryPair();
  assert.equal(await a.write(bytes(1, 2, 3)), 3);
  assert.equal(await a.write(bytes(4, 5)), 2);
  assert.equal(await b.write(bytes(9)), 1);
  const buf = new Uint8Array(4);
  assert.equal(await b.read(buf), 4);
  assert.deepEqual(buf, bytes(1, 2, 3, 4));
  assert.equal(await b.read(buf), 1);
  assert.equal(buf[0], 5);
  assert.equal(await a.read(buf), 1);
  assert.equal(buf[0], 9);
  assert.deepEqual(a.peer, { hostname: "memory", port: 2 });
  assert.deepEqual(b.peer, { hostname: "memory", port: 1 });
});

Deno.test("memoryPair() copies what is written: the writer may reuse its buffer at once", async () => {
  const [a, b] = memoryPair();
  const out = bytes(1, 2, 3);
  await a.write(out);
  out.fill(0);
  const buf = new Uint8Array(3);
  await b.read(buf);
  assert.deepEqual(buf, bytes(1, 2, 3));
});

Deno.test("memoryPair() takes what fits (a partial write) and holds a writer while the peer reads nothing", async () => {
  const [a, b] = memoryPair({ capacity: 10 });
  assert.equal(await a.write(new Uint8Array(8).fill(1)), 8);
  assert.equal(await a.write(new Uint8Array(8).fill(2)), 2, "only the room left is taken");
  assert.equal(b.unread, 10);
  let taken: number | null = null;
  const blocked = a.write(new Uint8Array(5).fill(3)).then((n) => taken = n);
  await settle();
  assert.equal(taken, null, "a write to a full pipe waits");
  const buf = new Uint8Array(4);
  assert.equal(await b.read(buf), 4);
  await blocked;
  assert.equal(taken, 4, "the write takes the room the read made");
  assert.equal(b.unread, 10);
  assert.deepEqual(await (a.closeWrite(), readToEnd(b)), [1, 1, 1, 1, 2, 2, 3, 3, 3, 3]);
});

Deno.test("memoryPair() writeAll() of more than the capacity finishes as the peer reads", async () => {
  const [a, b] = memoryPair({ capacity: 16 });
  const data = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  const writing = writeAll(a, data).then(() => a.closeWrite());
  const got = await readToEnd(b, 5);
  await writing;
  assert.deepEqual(Uint8Array.from(got), data);
});

Deno.test("memoryPair() closeWrite() is a FIN: the peer reads the rest, then null; the other way stays open", async () => {
  const [a, b] = memoryPair();
  await a.write(bytes(1, 2));
  let ended: number | null | undefined = undefined;
  const buf = new Uint8Array(8);
  assert.equal(await b.read(buf), 2);
  const pending = b.read(buf).then((n) => ended = n);
  await settle();
  assert.equal(ended, undefined, "a read waits while the peer's side is open");
  await a.closeWrite();
  await pending;
  assert.equal(ended, null);
  assert.equal(await b.read(buf), null, "and stays at the end");
  await assert.rejects(a.write(bytes(3)), ConnectionGone, "no write after closeWrite");
  await b.write(bytes(7, 8));
  assert.equal(await a.read(buf), 2, "the half-closed side still reads");
});

Deno.test("memoryPair() close() with nothing unread: the peer reads the rest, then null; its writes fail", async () => {
  const [a, b] = memoryPair();
  await a.write(bytes(1, 2, 3));
  a.close();
  assert.deepEqual(await readToEnd(b), [1, 2, 3]);
  await assert.rejects(b.write(bytes(1)), ConnectionGone);
  await assert.rejects(a.read(new Uint8Array(1)), ConnectionGone, "no read after close");
  await assert.rejects(a.write(bytes(1)), ConnectionGone, "no write after close");
  await assert.rejects(a.closeWrite(), ConnectionGone);
  a.close(); // twice is harmless
  assert.ok(a.isGone(new ConnectionGone("x")));
  assert.ok(!a.isGone(new Error("x")));
});

Deno.test("memoryPair() close() with input unread resets the peer: what it had not read is lost", async () => {
  const [a, b] = memoryPair();
  await b.write(bytes(9)); // a never reads this
  await a.write(bytes(1, 2, 3));
  a.close();
  await assert.rejects(b.read(new Uint8Array(8)), ConnectionGone);
  assert.equal(b.unread, 0);
});

Deno.test("memoryPair() close() fails the read and the write under way on that side", async () => {
  const [a, b] = memoryPair({ capacity: 1 });
  await a.write(bytes(1));
  const reading = a.read(new Uint8Array(1));
  const writing = a.write(bytes(2));
  await settle();
  a.close();
  await assert.rejects(reading, ConnectionGone);
  await assert.rejects(writing, ConnectionGone);
  assert.deepEqual(await readToEnd(b), [1], "what was taken before the close still arrives");
});

Deno.test("memoryPair() refuses a capacity that holds nothing", () => {
  assert.throws(() => memoryPair({ capacity: 0 }), RangeError);
});
