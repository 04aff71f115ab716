/**
 * The inbox pump over a store that fails for a while (a cluster's store while a NATS server
 * dies): a failed read is tried again by the pump itself, and so is the removal of what the
 * client acknowledged, with nothing else coming along to wake it.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { InboxPump, RETRY_MS } from "../../src/server/delivery.ts";
import type { Session } from "../../src/server/session.ts";
import type { InboxItem } from "../../src/store/types.ts";

function item(seq: number): InboxItem {
  return {
    user: "bob",
    seq,
    message: { id: new Uint8Array(16), time: new Date(0), from: "alice", kind: "text", text: "hi" },
    size: 10,
    cost: 10,
  };
}

/** A pump over an inbox of `items` whose first `failures.read` reads and `failures.remove` removals fail. */
function failingPump(items: InboxItem[], failures: { read: number; remove: number }) {
  const pushed: number[] = [];
  const removed: number[][] = [];
  const stored = [...items];
  const inbox = {
    stats: () => Promise.resolve({ count: stored.length, bytes: 10 * stored.length }),
    settle: () => Promise.resolve(),
    read: (_user: string, after: number) => {
      if (failures.read-- > 0) return Promise.reject(new Error("timeout"));
      return Promise.resolve(stored.filter((i) => i.seq > after));
    },
    remove: (_user: string, gone: InboxItem[]) => {
      removed.push(gone.map((i) => i.seq));
      if (failures.remove-- > 0) return Promise.reject(new Error("timeout"));
      for (const g of gone) stored.splice(stored.findIndex((i) => i.seq === g.seq), 1);
      return Promise.resolve();
    },
  };
  const ctx = {
    store: { inbox },
    log: { error: () => {}, warn: () => {}, info: () => {} },
    metrics: { messageOut: () => {} },
  } as unknown as ServerContext;
  const clock = new ManualClock();
  const session = {
    closed: false,
    clock,
    push: (type: number, body: { seq: number }) => {
      if (type === MsgType.PASS) pushed.push(body.seq);
    },
  } as unknown as Session;
  return { pump: new InboxPump(ctx, session, "bob", 1 << 20), pushed, removed, stored, clock };
}

/** Lets the pump's promises run, moving its clock by RETRY_MS a step, at most `steps` times. */
async function until(
  clock: ManualClock,
  ok: () => boolean,
  steps: number,
  what: string,
): Promise<void> {
  for (let i = 0; !ok(); i++) {
    if (i >= steps) throw new Error(`Not within ${steps} retries: ${what}`);
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    if (!ok()) clock.advance(RETRY_MS);
  }
}

Deno.test("InboxPump reads again by itself after a failed read", async () => {
  const { pump, pushed, clock } = failingPump([item(1), item(2)], { read: 2, remove: 0 });
  pump.start();
  await until(clock, () => pushed.length === 2, 5, "the items after two failed reads");
  assert.deepEqual(pushed, [1, 2]);
  pump.stop();
});

Deno.test("InboxPump removes acknowledged items again after a failed removal", async () => {
  const { pump, pushed, removed, stored, clock } = failingPump([item(1)], { read: 0, remove: 1 });
  pump.start();
  await until(clock, () => pushed.length === 1, 2, "the item");
  pump.ack(1);
  await until(clock, () => stored.length === 0, 5, "the item removed");
  assert.deepEqual(removed, [[1], [1]]);
  pump.stop();
});
