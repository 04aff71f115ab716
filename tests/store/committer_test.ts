/** The group committer on a real KV file: batching, deferred rows and their cancellation. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../../src/clock/clock.ts";
import { DEFER_GRAIN_MS, GroupCommitter, type PendingWrite } from "../../src/store/committer.ts";

async function withKv(fn: (kv: Deno.Kv, committer: GroupCommitter) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "parley-committer-" });
  const kv = await Deno.openKv(join(dir, "test.kv"));
  const committer = new GroupCommitter(kv);
  try {
    await fn(kv, committer);
  } finally {
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const set = (key: Deno.KvKey, value: unknown): Deno.KvMutation => ({ type: "set", key, value });

/** A deferred write and a promise of how it ends. */
function defer(committer: GroupCommitter, mutations: Deno.KvMutation[], delayMs: number) {
  let settle!: (error: Error | null) => void;
  const done = new Promise<void>((resolve, reject) =>
    settle = (error) => error ? reject(error) : resolve()
  );
  const write = committer.defer(mutations, 0, delayMs, (_, error) => settle(error), null);
  return { write, done };
}

Deno.test("GroupCommitter.write() gathers one tick's writes into one commit", () =>
  withKv(async (kv, committer) => {
    await Promise.all([1, 2, 3].map((i) => committer.write([set(["k", i], i)])));
    assert.equal(committer.commits, 1);
    assert.equal((await kv.get(["k", 3])).value, 3);
  }));

Deno.test("GroupCommitter.defer() commits rows after the delay unless they are cancelled", () =>
  withKv(async (kv, committer) => {
    const { write, done } = defer(committer, [set(["d", 1], 1), set(["d", 2], 2)], 30);
    assert.ok(write);
    assert.equal(write.cancel(0), true);
    assert.equal(write.cancel(0), false, "a row is cancelled once");
    assert.equal((await kv.get(["d", 2])).value, null, "nothing is written before the delay");
    await done;
    assert.equal((await kv.get(["d", 1])).value, null, "the cancelled row never reaches KV");
    assert.equal((await kv.get(["d", 2])).value, 2);
    assert.equal(write.cancel(1), false, "too late once committed");
  }));

Deno.test("GroupCommitter.defer() settles at once when every row is cancelled", () =>
  withKv(async (kv, committer) => {
    const told: (Error | null)[] = [];
    const write = committer.defer([set(["c", 1], 1)], 0, 60_000, (_, e) => told.push(e), null);
    write.cancel(0);
    assert.deepEqual(told, [null], "told during cancel(), before it returns");
    await committer.flush();
    assert.equal(committer.commits, 0);
    assert.equal((await kv.get(["c", 1])).value, null);
    assert.deepEqual(told, [null], "and only once");
  }));

Deno.test("GroupCommitter.flush() commits deferred rows before their time", () =>
  withKv(async (kv, committer) => {
    const { done } = defer(committer, [set(["f", 1], "x")], 60_000);
    await committer.flush();
    await done;
    assert.equal((await kv.get(["f", 1])).value, "x");
  }));

Deno.test("GroupCommitter refuses a write larger than one commit", () =>
  withKv(async (_kv, committer) => {
    const many = Array.from({ length: 901 }, (_, i) => set(["m", i], i));
    await assert.rejects(committer.write(many), RangeError);
    await assert.rejects(committer.write([set(["b"], 1)], 800 * 1024), RangeError);
  }));

Deno.test("GroupCommitter.flush() waits only for what was queued before it, however busy", () =>
  withKv(async (_kv, committer) => {
    let stop = false;
    const writers = [0, 1].map(async (w) => {
      for (let n = 0; !stop; n++) await committer.write([set(["busy", w, n], n)]);
    });
    await new Promise((r) => setTimeout(r, 20));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      committer.flush().then(() => "flushed"),
      new Promise((r) => timer = setTimeout(() => r("still waiting after 10 s"), 10_000)),
    ]);
    clearTimeout(timer);
    stop = true;
    await Promise.all(writers);
    assert.equal(outcome, "flushed");
  }));

Deno.test("GroupCommitter.promote() commits a deferred write before anything queued after it", () =>
  withKv(async (kv, committer) => {
    const first = defer(committer, [set(["p", 1], "deferred")], 60_000);
    const second = defer(committer, [set(["p", 2], "deferred too")], 60_000);
    committer.promote(first.write);
    await committer.write([set(["p", 3], "immediate")]);
    assert.equal((await kv.get(["p", 1])).value, "deferred", "promoted before the later write");
    assert.equal((await kv.get(["p", 2])).value, null, "a later deferred write keeps waiting");
    await first.done;
    second.write.cancel(0);
  }));

Deno.test("GroupCommitter tells a write once, before its rows commit, and never a cancelled one", () =>
  withKv(async (kv, committer) => {
    const told: string[] = [];
    const outcome = (name: string, onTaken: (w: PendingWrite) => void) => {
      let settle!: (error: Error | null) => void;
      const done = new Promise<Error | null>((resolve) => settle = resolve);
      committer.defer(
        [set(["k", name], "placeholder")],
        0,
        60_000,
        (_, e) => settle(e),
        null,
        (w) => {
          told.push(name);
          onTaken(w);
        },
      );
      return done;
    };
    // The hook may fill in a row's value at the last moment.
    const filled = outcome("filled", (w) => w.mutations[0] = set(["k", "filled"], "final"));
    // A throwing hook fails its own write only.
    const throwing = outcome("throwing", () => {
      throw new Error("cannot prepare");
    });
    const cancelled = committer.defer(
      [set(["k", "cancelled"], 1)],
      0,
      60_000,
      () => {},
      null,
      () => told.push("cancelled"),
    );
    assert.ok(cancelled.cancel(0));
    await committer.flush();
    assert.equal(await filled, null);
    assert.equal((await throwing)?.message, "cannot prepare");
    assert.deepEqual(told.sort(), ["filled", "throwing"]);
    assert.equal((await kv.get(["k", "filled"])).value, "final");
    assert.equal((await kv.get(["k", "throwing"])).versionstamp, null);
    assert.equal((await kv.get(["k", "cancelled"])).versionstamp, null);
  }));

Deno.test("GroupCommitter.defer() waits on the committer's clock, not the process's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-committer-" });
  const kv = await Deno.openKv(join(dir, "test.kv"));
  const clock = new ManualClock();
  const committer = new GroupCommitter(kv, clock);
  try {
    const { done } = defer(committer, [set(["t", 1], 1)], 60_000);
    let settled = false;
    done.then(() => settled = true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false, "a minute has not passed on the clock");
    clock.advance(59_999);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false);
    clock.advance(1 + DEFER_GRAIN_MS);
    await done;
    assert.equal((await kv.get(["t", 1])).value, 1);
  } finally {
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GroupCommitter.defer(): writes due within a grain wake one timer; cancelled ones none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-committer-" });
  const kv = await Deno.openKv(join(dir, "test.kv"));
  const clock = new ManualClock();
  const committer = new GroupCommitter(kv, clock);
  let fired = 0;
  const realSet = clock.setTimer.bind(clock);
  clock.setTimer = (fn, ms) => realSet(() => (fired++, fn()), ms);
  try {
    // One write per 0.25 ms, as chat traffic at 4,000 messages/s defers them.
    const writes = [];
    for (let i = 0; i < 40; i++) {
      writes.push(defer(committer, [set(["g", i], i)], 100));
      if (i % 4 === 3) {
        clock.advance(1);
      }
    }
    // A millisecond at a time, letting each commit finish, as real time would pass.
    for (let ms = 0; ms < 100 + DEFER_GRAIN_MS; ms++) {
      clock.advance(1);
      await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(writes.map((w) => w.done));
    assert.equal(fired, 1, "the ten milliseconds of writes went out on one timer");
    // Every row cancelled by its ACK: the committer sets no timer for them at all.
    const before = fired;
    for (let i = 0; i < 40; i++) {
      const w = committer.defer([set(["c", i], i)], 0, 100, () => {}, null);
      w.cancel(0);
    }
    clock.advance(200);
    assert.equal(fired - before, 1, "one wake finds them all cancelled and sets no other");
    assert.equal(clock.pending, 0);
  } finally {
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
