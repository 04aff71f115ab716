import assert from "node:assert/strict";
import { ManualClock, systemClock } from "../../src/clock/clock.ts";

Deno.test("a manual clock fires timers in due order, each at its own time", () => {
  const clock = new ManualClock(1000);
  const fired: string[] = [];
  clock.setTimer(() => fired.push(`b@${clock.now()}`), 20);
  clock.setTimer(() => {
    fired.push(`a@${clock.now()}`);
    clock.setTimer(() => fired.push(`c@${clock.now()}`), 5); // set by a timer, due in the window
  }, 10);
  const dropped = clock.setTimer(() => fired.push("never"), 15);
  clock.clearTimer(dropped);
  clock.advance(30);
  assert.deepEqual(fired, ["a@1010", "c@1015", "b@1020"]);
  assert.equal(clock.now(), 1030);
  assert.equal(clock.pending, 0);
});

Deno.test("a manual clock's timers due at the same time fire in the order they were set", () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  for (let i = 0; i < 5; i++) clock.setTimer(() => fired.push(i), 7);
  assert.equal(clock.nextDue(), 7);
  clock.advance(6);
  assert.deepEqual(fired, []);
  clock.advance(1);
  assert.deepEqual(fired, [0, 1, 2, 3, 4]);
});

Deno.test("a manual clock's wall time moves with it and time never goes back", () => {
  const clock = new ManualClock(0, Date.UTC(2026, 11, 5));
  clock.advance(60_000);
  assert.equal(new Date(clock.wall()).toISOString(), "2026-12-05T00:01:00.000Z");
  assert.throws(() => clock.advance(-1), RangeError);
});

Deno.test("the system clock's timers run", async () => {
  const before = systemClock.now();
  await new Promise<void>((resolve) => systemClock.setTimer(resolve, 5));
  assert.ok(systemClock.now() - before >= 4);
  systemClock.clearTimer(undefined);
});
