/**
 * What a node killed between two writes of the NATS store leaves behind, and how the others
 * read it: the half-done states are written here by hand, as the dead node would have left
 * them (these tests know the key layouts of src/store/nats/users.ts and pairs.ts).
 */

import assert from "node:assert/strict";
import { connectCluster } from "../../src/cluster/connect.ts";
import { ManualClock } from "../../src/clock/clock.ts";
import { openAccounts } from "../../src/store/nats/accounts.ts";
import { NatsStoreContext } from "../../src/store/nats/context.ts";
import { STALE_MARK_MS } from "../../src/store/nats/derived_index.ts";
import { openRecords, read, writeIf } from "../../src/store/nats/kv_records.ts";
import { destroyNatsStore } from "../../src/store/nats/nats_store.ts";
import type { Pair } from "../../src/store/nats/pairs.ts";
import { openSocial } from "../../src/store/nats/social.ts";
import { ABANDONED_CLAIM_MS } from "../../src/store/nats/users.ts";
import { HASH } from "../helpers/password_hash.ts";
import { natsTest } from "../helpers/nats.ts";

async function withStore(
  urls: string[],
  fn: (ctx: NatsStoreContext, clock: ManualClock) => Promise<void>,
): Promise<void> {
  const prefix = `t${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const nc = await connectCluster(urls, { name: "parley-half-done" });
  try {
    const clock = new ManualClock();
    await fn(await NatsStoreContext.open(nc, { worldBacklog: 0, clock, prefix }), clock);
  } finally {
    await destroyNatsStore(nc, prefix);
    await nc.close();
  }
}

const user = (name: string) => ({ name, password: HASH, created: new Date() });

natsTest(
  "a look-alike claim whose registration died holds the name a while, then frees it",
  async (cluster) => {
    await withStore(cluster.urls, async (ctx, clock) => {
      const { users } = await openAccounts(ctx);
      const bucket = await openRecords(ctx, "users");
      // A node claimed "zoe" and died before it wrote the user.
      assert.ok(await writeIf(bucket, "look.zoe", { owner: "zoe", at: clock.wall() }, 0));
      assert.equal(await users.lookalike("zoe"), null, "a claim alone names nobody");
      assert.equal(await users.create(user("z0e")), false, "a registration may be under way");
      clock.advance(ABANDONED_CLAIM_MS);
      assert.equal(await users.create(user("z0e")), true, "an abandoned claim is taken over");
      assert.equal(await users.lookalike("zoe"), "z0e");
      assert.equal(await users.create(user("zoe")), false);
    });
  },
);

natsTest(
  "a friendship committed by a node that died before settling shows at once and is repaired",
  async (cluster) => {
    await withStore(cluster.urls, async (ctx, clock) => {
      const { friends, blocks } = await openSocial(ctx);
      const social = await openRecords(ctx, "social");
      await friends.add({ user: "ann", name: "Ann" }, { user: "cy", name: "Cy" });
      // The dead node marked both indexes, committed the pair, and settled neither.
      const mark = (of: string) => ({ view: {}, marks: { m1: { of, at: clock.wall() } } });
      const annTies = await read<{ view: object }>(social, "ties.ann");
      const ties = { ...mark("ben"), view: annTies.value!.view };
      assert.ok(await writeIf(social, "ties.ann", ties, annTies.revision));
      assert.ok(await writeIf(social, "ties.ben", mark("ann"), 0));
      const pair: Pair = {
        names: { ann: "Ann", ben: "Ben" },
        friends: true,
        asked: [],
        blocks: ["ben"],
      };
      assert.ok(await writeIf(social, "pair.ann.ben", pair, 0));
      assert.deepEqual((await friends.list("ann")).map((f) => f.name), ["Ben", "Cy"]);
      assert.deepEqual(await friends.list("ben"), [{ user: "ann", name: "Ann" }]);
      assert.deepEqual([...await blocks.either("ann")], ["ben"], "ben's block of ann, too");
      // Once the mark is stale, a read settles it: the index alone then says the same.
      clock.advance(STALE_MARK_MS + 1);
      await friends.list("ben");
      for (let i = 0; i < 50; i++) {
        const v = (await read<{ marks: object }>(social, "ties.ben")).value;
        if (v && Object.keys(v.marks).length === 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const settled = (await read<{ view: object; marks: object }>(social, "ties.ben")).value;
      assert.deepEqual(settled?.marks, {});
      assert.deepEqual(settled?.view, { ann: { name: "Ann", friend: true, blocks: true } });
    });
  },
);
