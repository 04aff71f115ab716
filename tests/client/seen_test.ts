/** SeenMessages: the client's duplicate filter for redelivered messages. */

import assert from "node:assert/strict";
import { SeenMessages } from "../../src/client/seen.ts";

const id = (n: number) => new Uint8Array(16).fill(n);

Deno.test("SeenMessages drops a message seen before, from the same sender in any case", () => {
  const seen = new SeenMessages();
  assert.equal(seen.first("Alice", id(1)), true);
  assert.equal(seen.first("alice", id(1)), false, "the same sender, another case");
  assert.equal(seen.first("bob", id(1)), true, "another sender may use the same id");
  assert.equal(seen.size, 2);
});

Deno.test("SeenMessages forgets the oldest ids first and never holds more than its capacity", () => {
  const seen = new SeenMessages(3);
  for (let n = 1; n <= 3; n++) assert.equal(seen.first("a", id(n)), true);
  // A fourth pushes out the first; the others are still known.
  assert.equal(seen.first("a", id(4)), true);
  assert.equal(seen.size, 3);
  assert.equal(seen.first("a", id(2)), false);
  assert.equal(seen.first("a", id(3)), false);
  assert.equal(seen.first("a", id(1)), true, "forgotten, so new again (and it pushes out 2)");
  assert.equal(seen.first("a", id(2)), true);
  // Many rounds past the capacity: still the newest three, in order of arrival.
  for (let n = 10; n < 100; n++) seen.first("a", id(n));
  assert.equal(seen.size, 3);
  for (const n of [97, 98, 99]) assert.equal(seen.first("a", id(n)), false, `id ${n}`);
  assert.equal(seen.first("a", id(96)), true);
});

Deno.test("SeenMessages refuses a capacity it could not keep", () => {
  for (const capacity of [0, -1, 2.5, NaN]) {
    assert.throws(() => new SeenMessages(capacity), RangeError, String(capacity));
  }
});
