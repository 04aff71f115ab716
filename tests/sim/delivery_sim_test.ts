/**
 * The delivery simulation (tests/sim/delivery_sim.ts) over a fixed set of seeds. A failure
 * prints its seed, its step and the last steps; `deno task sim --seed N` replays it.
 * `deno task sim --seeds N` runs many more.
 */

import assert from "node:assert/strict";
import { simulate } from "./delivery_sim.ts";

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
const STEPS = 3000;

for (const seed of SEEDS) {
  Deno.test(`delivery simulation: seed ${seed}, ${STEPS} steps`, async () => {
    const r = await simulate(seed, { steps: STEPS });
    // The run did what it is for: messages sent and shown, faults and crashes survived.
    assert.ok(r.sent > 100 && r.shown > 100, JSON.stringify(r));
    assert.ok(r.failedCommits > 0 && r.idleChecks > 0, JSON.stringify(r));
  });
}

Deno.test("delivery simulation: a seed replays exactly", async () => {
  const a = await simulate(11, { steps: 600 });
  const b = await simulate(11, { steps: 600 });
  assert.deepEqual(a, b);
});
