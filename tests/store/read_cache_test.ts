/** ReadCache: what it keeps, what it drops, and reads that race a change. */

import assert from "node:assert/strict";
import { ReadCache } from "../../src/store/read_cache.ts";

Deno.test("ReadCache keeps a value read once and reads again after forget()", async () => {
  const cache = new ReadCache<string, number>(10);
  let reads = 0;
  const read = () => Promise.resolve(++reads);
  assert.equal(await cache.get("a", read), 1);
  assert.equal(await cache.get("a", read), 1);
  cache.forget("a");
  assert.equal(await cache.get("a", read), 2);
  cache.set("a", 7);
  assert.equal(await cache.get("a", read), 7);
  assert.equal(reads, 2);
});

Deno.test("ReadCache does not keep a read forgotten while in flight, a failure, or a refused value", async () => {
  const cache = new ReadCache<string, number | null>(10, (v) => v !== null);
  // In flight when the key changes: its caller gets its answer, the next caller reads again.
  let release!: (v: number) => void;
  const slow = cache.get("k", () => new Promise((r) => release = r));
  cache.forget("k");
  release(1);
  assert.equal(await slow, 1);
  assert.equal(await cache.get("k", () => Promise.resolve(2)), 2);
  // A failed read is not kept.
  await assert.rejects(cache.get("e", () => Promise.reject(new Error("disk"))), /disk/);
  assert.equal(await cache.get("e", () => Promise.resolve(3)), 3);
  // A value the cache was told not to keep is read again.
  assert.equal(await cache.get("n", () => Promise.resolve(null)), null);
  await Promise.resolve();
  assert.equal(await cache.get("n", () => Promise.resolve(4)), 4);
});

Deno.test("ReadCache holds at most max keys, dropping the oldest", async () => {
  const cache = new ReadCache<number, number>(3);
  for (let i = 0; i < 5; i++) await cache.get(i, () => Promise.resolve(i));
  let reads = 0;
  const read = (v: number) => () => {
    reads++;
    return Promise.resolve(v * 10);
  };
  assert.equal(await cache.get(4, read(4)), 4); // kept
  assert.equal(await cache.get(0, read(0)), 0 * 10); // dropped, read again
  assert.equal(reads, 1);
});

Deno.test("ReadCache: misses read at the same time push no kept value out", async () => {
  const cache = new ReadCache<string, number | null>(3, (v) => v !== null);
  for (const k of ["a", "b", "c"]) await cache.get(k, () => Promise.resolve(1));
  // Ten unknown keys at once (say, guessed tokens), then the kept ones are still there.
  await Promise.all(
    Array.from({ length: 10 }, (_, i) => cache.get(`miss${i}`, () => Promise.resolve(null))),
  );
  let reads = 0;
  for (const k of ["a", "b", "c"]) {
    await cache.get(k, () => {
      reads++;
      return Promise.resolve(2);
    });
  }
  assert.equal(reads, 0);
});
