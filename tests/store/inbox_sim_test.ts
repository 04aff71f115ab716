/**
 * A seeded random run of the inbox on a real KV file: private and group messages of every size
 * from several senders, acknowledgements and restarts. After each step the counts kept in memory
 * (per inbox, per sender, in all) match what the file holds, and every blob is named by a row.
 * A failure prints the seed; PARLEY_SIM_SEED=N repeats one run.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { KvInboxStore } from "../../src/store/inbox.ts";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import type { ChatMessage, InboxLimits, Store } from "../../src/store/types.ts";

const USERS = ["ann", "ben", "cat", "dan", "eve", "fay"];
const STEPS = 100;

/** xorshift32: the same seed gives the same run. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

interface Row {
  message: ChatMessage;
  size: number;
  cost?: number;
  blob?: { id: string };
}

/** The file's own account of things: recounted from scratch. */
async function recount(path: string, store: Store) {
  // The store is open: read through a second handle on the same file.
  const kv = await Deno.openKv(join(path, KV_FILE));
  try {
    const perUser = new Map<string, { count: number; bytes: number }>();
    const perSender = new Map<string, number>();
    const named = new Set<string>();
    const refs = new Set<string>();
    let total = 0;
    for await (const e of kv.list<Row>({ prefix: ["inbox"] })) {
      const user = e.key[1] as string;
      const u = perUser.get(user) ?? { count: 0, bytes: 0 };
      u.count++;
      u.bytes += e.value.size;
      perUser.set(user, u);
      const sender = e.value.message.from.toLowerCase();
      const cost = e.value.cost ?? e.value.size;
      perSender.set(sender, (perSender.get(sender) ?? 0) + cost);
      total += cost;
      if (e.value.blob) named.add(`${e.value.blob.id}/${user}/${String(e.key[2])}`);
    }
    for await (const e of kv.list({ prefix: ["blob_ref"] })) {
      refs.add(e.key.slice(1).map(String).join("/"));
    }
    assert.deepEqual([...refs].sort(), [...named].sort(), "a ref for every row naming a blob");
    const blobs = new Set<string>();
    for await (const e of kv.list({ prefix: ["blob"] })) blobs.add(e.key[1] as string);
    const referenced = new Set([...refs].map((r) => r.split("/")[0]));
    assert.deepEqual([...blobs].sort(), [...referenced].sort(), "every blob has a ref, no more");
    assert.equal((await Array.fromAsync(kv.list({ prefix: ["blob_pending"] }))).length, 0);
    for (const user of USERS) {
      assert.deepEqual(
        await store.inbox.stats(user),
        perUser.get(user) ?? { count: 0, bytes: 0 },
        `${user}'s counts`,
      );
      assert.equal(store.inbox.storedBytes(user), perSender.get(user) ?? 0, `${user}'s bytes sent`);
    }
    assert.equal(store.inbox.storedBytes(), total, "the store's bytes");
  } finally {
    kv.close();
  }
}

async function run(seed: number): Promise<void> {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const dir = await Deno.makeTempDir({ prefix: "parley-sim-" });
  const path = join(dir, "data");
  const limits: InboxLimits = {
    maxMessages: 12,
    maxBytes: 400_000,
    senderSharePercent: 50,
    maxSenderBytes: 600_000,
    maxTotalBytes: 1_500_000,
  };
  let store = await openKvStore(path);
  try {
    for (let step = 0; step < STEPS; step++) {
      const r = rnd();
      if (r < 0.55) {
        const from = pick(USERS);
        const others = USERS.filter((u) => u !== from);
        const group = rnd() < 0.5;
        const to = group ? others.filter(() => rnd() < 0.7) : [pick(others)];
        const sizes = [10, 900, 1024, 5000, 48 * 1024, 49 * 1024, 130_000];
        const bytes = pick(sizes);
        const message: ChatMessage = {
          id: crypto.getRandomValues(new Uint8Array(16)),
          time: new Date(),
          from: from.toUpperCase(), // display form: the identity is its lowercase
          kind: "text",
        };
        if (group) message.group = { id: 1, name: "g" };
        if (rnd() < 0.5) {
          message.kind = "image";
          message.image = new Uint8Array(bytes).fill(step & 0xff);
        } else {
          message.text = "é".repeat(Math.min(bytes, 16_000) >> 1);
        }
        // Recipients with an empty inbox may be online: their rows wait, and some acknowledge
        // at once (before the row is written). Acknowledgements are cumulative, so only an
        // empty inbox's first message can be acknowledged straight away here.
        const online = new Set<string>();
        for (const u of to) {
          if ((await store.inbox.stats(u)).count === 0 && rnd() < 0.6) online.add(u);
        }
        const acksAtOnce = new Set([...online].filter(() => rnd() < 0.7));
        const placed = await store.inbox.enqueue(to, message, limits, (u) => online.has(u));
        for (const item of placed.queued) {
          if (acksAtOnce.has(item.user)) await store.inbox.remove(item.user, [item]);
        }
        await store.inbox.settle();
        await placed.durable.promise();
        const taken = placed.queued.length + placed.full.length + placed.capped.length;
        assert.equal(placed.refused ? to.length : taken, to.length, "every recipient accounted");
        for (const item of placed.queued) {
          if (acksAtOnce.has(item.user)) continue;
          const [back] = await store.inbox.read(item.user, item.seq - 1, 1);
          assert.equal(back.seq, item.seq);
          assert.deepEqual(back.message.image, message.image);
          assert.equal(back.message.text, message.text);
        }
      } else if (r < 0.9) {
        const user = pick(USERS);
        const items = await store.inbox.read(user, 0, 20);
        // Acknowledged cumulatively: a prefix.
        await store.inbox.remove(user, items.slice(0, Math.ceil(rnd() * items.length)));
      } else {
        await store.close();
        store = await openKvStore(path);
      }
      await store.inbox.settle();
      await (store.inbox as KvInboxStore).removalsDone();
      await recount(path, store);
    }
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("inbox simulation: counts, budgets and blobs match the file after every step", async () => {
  const fixed = Deno.env.get("PARLEY_SIM_SEED");
  const seeds = fixed ? [Number(fixed)] : [1, 2].map((i) => (Date.now() * i) >>> 0);
  for (const seed of seeds) {
    try {
      await run(seed);
    } catch (e) {
      throw new Error(`inbox simulation failed with PARLEY_SIM_SEED=${seed}`, { cause: e });
    }
  }
});
