import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import {
  GROWTH_BYTES,
  IdleCollector,
  MIN_GAP_MS,
  QUIET_BYTES,
  QUIET_TICKS,
  TICK_MS,
} from "../../src/server/idle_collector.ts";
import { V8_FLAGS_ARG } from "../../src/server/v8_flags.ts";
import { createLogger } from "../../src/server/log.ts";
import { withServer } from "../helpers/server.ts";
import { denoEval } from "../helpers/cli.ts";

const MIB = 1024 * 1024;

/** A collector over a heap figure the test sets; `collect` drops it to `live`. */
function setup(start = 50 * MIB) {
  const clock = new ManualClock();
  const heap = { used: start, live: start, runs: 0, frames: 0, outbound: 0 };
  const lines: string[] = [];
  const collector = new IdleCollector({
    clock,
    log: createLogger({ write: (line) => lines.push(line) }),
    heapUsed: () => heap.used,
    framesRead: () => heap.frames,
    outboundBytes: () => heap.outbound,
    collect: () => {
      heap.runs++;
      heap.used = heap.live;
    },
  });
  const tick = (n = 1) => clock.advance(n * TICK_MS);
  return { clock, heap, lines, collector, tick };
}

Deno.test("IdleCollector collects once the heap has grown and then stayed quiet", () => {
  const { heap, lines, collector, tick } = setup();
  heap.used += GROWTH_BYTES + 8 * MIB; // a burst of logins
  tick();
  tick(QUIET_TICKS - 1);
  assert.equal(heap.runs, 0, "not before QUIET_TICKS quiet ticks");
  tick();
  assert.equal(heap.runs, 1);
  assert.match(lines.join("\n"), /memory\.collected/);
  tick(QUIET_TICKS * 3);
  assert.equal(heap.runs, 1, "nothing grew since");
  collector.stop();
});

Deno.test("IdleCollector leaves a busy heap alone, and growth below GROWTH_BYTES", () => {
  const { heap, collector, tick } = setup();
  tick(60);
  // Allocation every second: up by more than QUIET_BYTES, or down (a collection ran).
  for (let i = 0; i < 30; i++) {
    heap.used += i % 3 === 2 ? -4 * MIB : QUIET_BYTES + 4 * MIB;
    tick();
  }
  assert.ok(heap.used - heap.live >= GROWTH_BYTES);
  assert.equal(heap.runs, 0, "a busy server is not paused");
  // Quiet now, and well over the growth: collected.
  tick(QUIET_TICKS);
  assert.equal(heap.runs, 1);
  // Grown a little, then quiet: not worth a pause.
  heap.used += GROWTH_BYTES / 2;
  tick(120);
  assert.equal(heap.runs, 1);
  collector.stop();
});

Deno.test("IdleCollector measures growth from the heap's low point, and waits MIN_GAP_MS between runs", () => {
  const { heap, collector, tick } = setup(200 * MIB);
  tick(60);
  // V8 collected on its own down to 60 MiB; then 40 MiB of garbage: over GROWTH_BYTES from there.
  heap.used = heap.live = 60 * MIB;
  tick();
  heap.used += 40 * MIB;
  tick(QUIET_TICKS + 1);
  assert.equal(heap.runs, 1);
  heap.used += GROWTH_BYTES + MIB;
  tick(QUIET_TICKS + 1);
  assert.equal(heap.runs, 1, "within MIN_GAP_MS of the last run");
  tick(MIN_GAP_MS / TICK_MS);
  assert.equal(heap.runs, 2);
  collector.stop();
});

Deno.test("IdleCollector counts a fall of the heap, a frame read or waiting output as busy", () => {
  const { heap, collector, tick } = setup();
  heap.used += GROWTH_BYTES + 8 * MIB;
  tick();
  // A fall (a collection V8 ran) with flat ticks around it: never QUIET_TICKS quiet in a row.
  for (let i = 0; i < 10; i++) {
    tick(QUIET_TICKS - 1);
    heap.used -= MIB / 4;
    tick();
    heap.used += MIB / 4; // back up a little: a tick that rises within QUIET_BYTES is quiet
  }
  assert.equal(heap.runs, 0, "a heap that falls is not quiet");
  // A client that sends a frame every few seconds, allocating next to nothing.
  for (let i = 0; i < 10; i++) {
    tick(QUIET_TICKS - 1);
    heap.frames++;
    tick();
  }
  assert.equal(heap.runs, 0, "frames read are activity");
  heap.outbound = 1;
  tick(QUIET_TICKS * 2);
  assert.equal(heap.runs, 0, "output waiting for a socket is activity");
  heap.outbound = 0;
  tick(QUIET_TICKS);
  assert.equal(heap.runs, 1);
  collector.stop();
});

Deno.test("a server runs its idle collection once quiet, not while a client sends, and stops it on close", () => {
  const clock = new ManualClock();
  const heap = { used: 100 * MIB, runs: 0 };
  return withServer(
    async (t) => {
      const alice = await t.user("alice");
      heap.used += GROWTH_BYTES + MIB;
      // Alice pings every second: busy.
      for (let i = 0; i < QUIET_TICKS * 3; i++) {
        await alice.ping();
        clock.advance(TICK_MS);
      }
      assert.equal(heap.runs, 0, "collected while a client was sending");
      for (let i = 0; i <= QUIET_TICKS; i++) clock.advance(TICK_MS);
      assert.equal(heap.runs, 1, "quiet for QUIET_TICKS");
      await t.server.close();
      heap.used += 2 * GROWTH_BYTES;
      clock.advance(MIN_GAP_MS * 2);
      assert.equal(heap.runs, 1, "nothing after close");
    },
    {},
    {
      clock,
      idleCollection: {
        heapUsed: () => heap.used,
        collect: () => {
          heap.runs++;
          heap.used = 100 * MIB;
        },
      },
    },
  );
});

Deno.test("IdleCollector.stop() ends its ticks", () => {
  const { heap, collector, tick } = setup();
  collector.stop();
  heap.used += 2 * GROWTH_BYTES;
  tick(200);
  assert.equal(heap.runs, 0);
});

// The flags the server starts with expose a gc that gives pages back. A plain gc() frees the
// garbage but kept every page: after a burst like this one the process's RSS did not move.
Deno.test("under V8_FLAGS, reducingCollection() gives a burst's memory back to the system", async () => {
  const module = new URL("../../src/server/idle_collector.ts", import.meta.url).href;
  const code = `
    import { reducingCollection } from "${module}";
    // Many short-lived objects, some surviving a while: the young generation grows to its most.
    const ring = new Array(200_000);
    const started = performance.now();
    for (let i = 0; performance.now() - started < 700;) {
      for (let k = 0; k < 10_000; k++, i++) ring[i % ring.length] = { i, s: "y".repeat(i % 48) };
    }
    ring.fill(null);
    const before = Deno.memoryUsage().rss;
    const collect = reducingCollection();
    if (!collect) throw new Error("no gc exposed");
    collect();
    console.log(JSON.stringify({ before, after: Deno.memoryUsage().rss }));
  `;
  const { before, after } = JSON.parse(await denoEval([V8_FLAGS_ARG], code));
  assert.ok(before - after > 64 * MIB, `RSS ${before} bytes before, ${after} after`);
});
