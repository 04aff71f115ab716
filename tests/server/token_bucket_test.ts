/** TokenBucket on an injected clock: the rate, the burst, and the flood window. */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { FLOOD_WINDOW_MS, TokenBucket } from "../../src/server/throttle.ts";

Deno.test("TokenBucket: a steady flood at twice the rate is flooding within a few windows, though every refill lets one through", () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket(100, 20, clock);
  let passed = 0;
  // Two requests every 10 ms: one token refills in between, so the refusals are never "in a row".
  for (; clock.now() < 20 * FLOOD_WINDOW_MS && !bucket.flooding; clock.advance(10)) {
    for (let i = 0; i < 2; i++) if (bucket.take()) passed++;
  }
  assert.ok(bucket.flooding, "never flooding");
  assert.ok(clock.now() < 2 * FLOOD_WINDOW_MS, `flooding only after ${clock.now()} ms`);
  assert.ok(passed >= clock.now() / 10, "requests within the rate still pass");
});

Deno.test("TokenBucket: a client at the rate is never flooding, and one burst too many is forgiven", () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket(100, 20, clock);
  for (let i = 0; i < 40; i++) bucket.take(); // the burst, then 20 refusals at once
  assert.equal(bucket.strikes, 20);
  assert.ok(!bucket.flooding, "exactly the burst refused is not yet flooding");
  assert.ok(!bucket.take());
  assert.ok(bucket.flooding, "one more is");
  clock.advance(FLOOD_WINDOW_MS * 2);
  assert.equal(bucket.strikes, 0, "strikes drain by the burst every window");
  for (let t = 0; t < 100_000; t += 10) {
    clock.advance(10);
    assert.ok(bucket.take(), `refused at ${t} ms at exactly the rate`);
  }
  assert.ok(!bucket.flooding);
});

Deno.test("TokenBucket: a cost above the burst passes a full bucket and empties it", () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket(10, 5, clock);
  assert.ok(bucket.take(256));
  assert.ok(!bucket.take());
  clock.advance(500);
  assert.ok(bucket.take(5), "refilled at the rate");
  assert.ok(!bucket.take(2));
  // 1 refused at 0 ms, drained by 5 × 500 / FLOOD_WINDOW_MS, then 2 more.
  assert.equal(bucket.strikes, 1 - 5 * 500 / FLOOD_WINDOW_MS + 2, "refused costs, drained");
});
