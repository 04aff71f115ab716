/** LoginThrottle and RegistrationBudget on an injected clock. */

import assert from "node:assert/strict";
import { type Clock, ManualClock } from "../../src/clock/clock.ts";
import { type Attempt, LoginThrottle, RegistrationBudget } from "../../src/server/throttle.ts";

function clock(start = 1_000): ManualClock {
  return new ManualClock(start);
}

function throttle(clock: Clock) {
  return new LoginThrottle({
    freeFailures: 2,
    userFreeFailures: 4,
    baseDelayMs: 1000,
    maxDelayMs: 8000,
    clock,
  });
}

function started(begun: Attempt | number): Attempt {
  assert.ok(typeof begun !== "number", `refused for ${begun} ms`);
  return begun;
}

Deno.test("LoginThrottle counts an attempt when it starts, before it is settled", () => {
  const c = clock();
  const t = throttle(c);
  const open = [1, 2, 3].map(() => started(t.beginPassword("alice", "10.0.0.1")));
  // Three unsettled attempts: the third passed the two free ones, so the next one waits.
  assert.equal(t.beginPassword("alice", "10.0.0.1"), 1000);
  for (const a of open) t.failed(a);
  assert.throws(() => t.failed(open[0]), /settled twice/);
});

Deno.test("LoginThrottle delays double and follow the injected clock, not the wall clock", () => {
  const c = clock();
  const t = throttle(c);
  for (let i = 0; i < 3; i++) t.failed(started(t.beginPassword("alice", "10.0.0.1")));
  assert.equal(t.beginPassword("alice", "10.0.0.1"), 1000);
  // A wall-clock step back of an hour changes nothing.
  const realNow = Date.now;
  Date.now = () => realNow() - 3_600_000;
  try {
    assert.equal(t.beginPassword("alice", "10.0.0.1"), 1000);
  } finally {
    Date.now = realNow;
  }
  c.advance(1000);
  t.failed(started(t.beginPassword("alice", "10.0.0.1")));
  assert.equal(t.beginPassword("alice", "10.0.0.1"), 2000);
  c.advance(2000);
  t.failed(started(t.beginPassword("alice", "10.0.0.1")));
  assert.equal(t.beginPassword("alice", "10.0.0.1"), 4000);
  // Forgotten once the longest delay passes with no new failure.
  c.advance(8001);
  t.failed(started(t.beginPassword("alice", "10.0.0.1")));
  t.failed(started(t.beginPassword("alice", "10.0.0.1")));
});

Deno.test("LoginThrottle: a success gives its count back and clears its name at its address", () => {
  const c = clock();
  const t = throttle(c);
  t.failed(started(t.beginPassword("alice", "10.0.0.1")));
  t.failed(started(t.beginPassword("bob", "10.0.0.1")));
  t.succeeded(started(t.beginPassword("alice", "10.0.0.1")));
  // The address keeps its two failures: one more is free, the next waits.
  t.failed(started(t.beginPassword("carol", "10.0.0.1")));
  assert.equal(t.beginPassword("dave", "10.0.0.1"), 1000);
});

Deno.test("LoginThrottle: guesses from elsewhere do not lock the owner out; the name's cap spares known addresses", () => {
  const c = clock();
  const t = throttle(c);
  t.succeeded(started(t.beginPassword("alice", "10.0.0.1"))); // the owner's usual address
  for (const attacker of ["10.0.0.2", "10.0.0.3"]) {
    for (let i = 0; i < 3; i++) {
      const begun = t.beginPassword("alice", attacker);
      if (typeof begun !== "number") t.failed(begun);
    }
  }
  // Past the cap of four failures for the name from all addresses together.
  assert.ok(typeof t.beginPassword("alice", "10.0.0.2") === "number");
  assert.equal(t.beginPassword("alice", "10.0.0.4"), 1000, "a new address waits");
  t.succeeded(started(t.beginPassword("alice", "10.0.0.1")));
});

Deno.test("RegistrationBudget refills steadily on the injected clock", () => {
  const c = clock();
  const b = new RegistrationBudget({
    perAddress: 2,
    overall: 3,
    windowMs: 3_600_000,
    clock: c,
  });
  assert.equal(b.take("a"), null);
  assert.equal(b.take("a"), null);
  assert.deepEqual(b.take("a"), { scope: "address", waitMs: 1_800_000 });
  assert.equal(b.take("b"), null);
  assert.deepEqual(b.take("c"), { scope: "server", waitMs: 1_200_000 });
  b.giveBack("b");
  assert.equal(b.take("c"), null);
  c.advance(1_800_000);
  assert.equal(b.take("a"), null);
});

Deno.test("LoginThrottle: a check that never ran gives its count back and makes no address known", () => {
  const c = clock();
  const t = throttle(c);
  for (let i = 0; i < 4; i++) t.failed(started(t.beginPassword("alice", `10.0.1.${i}`)));
  // Refused before hashing (SERVER_BUSY): not counted, and the pair proved nothing.
  t.withdrawn(started(t.beginPassword("alice", "10.0.0.9")));
  t.failed(started(t.beginPassword("alice", "10.0.0.9")));
  assert.equal(t.beginPassword("alice", "10.0.0.9"), 1000, "the name's cap still applies here");
});
