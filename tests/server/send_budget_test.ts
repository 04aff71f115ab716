/** SendBudget: each sender's bytes of queued content per minute, on an injected clock. */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { SendBudget } from "../../src/server/send_budget.ts";

Deno.test("SendBudget refuses a sender whose bucket is empty until it refills; others go on", () => {
  const clock = new ManualClock();
  const budget = new SendBudget(60_000, clock); // 1,000 bytes a second
  assert.equal(budget.waitMs("ann"), 0);
  budget.charge("ann", 50_000);
  assert.equal(budget.waitMs("ann"), 0, "10,000 bytes are left");
  budget.charge("ann", 30_000); // one send may take it below zero: 20,000 in debt
  assert.equal(budget.waitMs("ann"), 20_001, "until the debt and one byte are paid back");
  assert.equal(budget.waitMs("ben"), 0, "another sender is not held up");
  clock.advance(20_000);
  assert.equal(budget.waitMs("ann"), 1);
  clock.advance(1);
  assert.equal(budget.waitMs("ann"), 0);
  // A quiet minute refills it to the full minute's worth, no more.
  clock.advance(10 * 60_000);
  budget.charge("ann", 60_000);
  assert.ok(budget.waitMs("ann") > 0);
});

Deno.test("SendBudget forgets senders whose bucket has filled up again", () => {
  const clock = new ManualClock();
  const budget = new SendBudget(60_000, clock);
  for (let i = 0; i < 10_000; i++) budget.charge(`u${i}`, 1);
  assert.equal(budget.size, 10_000);
  clock.advance(1000);
  budget.charge("late", 1);
  assert.equal(budget.size, 1, "the full buckets went when the next one was made");
});
