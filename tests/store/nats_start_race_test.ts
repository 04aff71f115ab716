/**
 * Nodes started together on a fresh prefix: each makes the store's buckets and streams at the
 * same moment as the others, through a different NATS server. Every node must be ready
 * promptly, on one identity key: a node answered "created" before the new stream had a leader
 * used to stall on its first read for the whole request timeout (10 s) and fail to start.
 */

import assert from "node:assert/strict";
import { connectCluster } from "../../src/cluster/connect.ts";
import { destroyNatsStore, natsIdentity, openNatsStore } from "../../src/store/nats/nats_store.ts";
import { natsTest } from "../helpers/nats.ts";

/**
 * A bound for a loaded machine, not a speed target: a node that waits out a request timeout
 * (10 s) more than once, or fails, is what this catches. Each round opens in 3–6 s here.
 */
const PROMPT_MS = 20_000;

natsTest("three nodes opening one fresh store at once are all ready promptly", async (cluster) => {
  for (let round = 0; round < 2; round++) {
    const prefix = `s${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const dirs = await Promise.all([0, 1, 2].map(() => Deno.makeTempDir()));
    const ncs = await Promise.all(
      cluster.urls.map((url, i) => connectCluster([url], { name: `parley-start-${i}` })),
    );
    try {
      const started = Date.now();
      const opened = await Promise.all(ncs.map(async (nc, i) => {
        const identity = await natsIdentity(nc, { prefix }, dirs[i]);
        const store = await openNatsStore(nc, { prefix, worldBacklog: 10 });
        const ms = Date.now() - started;
        await store.close();
        return { key: identity.publicKey.toHex(), ms };
      }));
      for (const { ms } of opened) assert.ok(ms < PROMPT_MS, `a node took ${ms} ms to open`);
      assert.equal(new Set(opened.map((o) => o.key)).size, 1, "one identity key");
    } finally {
      await destroyNatsStore(ncs[0], prefix);
      for (const nc of ncs) await nc.close();
      for (const dir of dirs) await Deno.remove(dir, { recursive: true });
    }
  }
});
