/** invariant(): throws by default; a handler installed instead is told and the caller goes on. */

import assert from "node:assert/strict";
import { invariant, InvariantError, onInvariantBroken } from "../../src/invariant/invariant.ts";

Deno.test("invariant() passes a condition that holds and throws InvariantError otherwise", () => {
  invariant(true, "holds");
  assert.throws(
    () => invariant(false, "counts are not negative"),
    (e: unknown) =>
      e instanceof InvariantError && e.name === "InvariantError" &&
      e.message === "Invariant broken: counts are not negative",
  );
});

Deno.test("onInvariantBroken() sends broken invariants to a handler until it is put back", () => {
  const told: string[] = [];
  const restore = onInvariantBroken((what) => told.push(what));
  try {
    invariant(false, "one");
    invariant(true, "two");
    invariant(false, "three");
  } finally {
    restore();
  }
  assert.deepEqual(told, ["one", "three"]);
  assert.throws(() => invariant(false, "four"), InvariantError);
});
