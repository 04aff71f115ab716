/**
 * Two Parley nodes on one NATS store: the accounts and social parts of two stores opened on the
 * same prefix, each over its own connection to a different server of a real three-server
 * cluster, racing each other. What one node writes, the other must see, and of two changes that
 * exclude each other exactly one must win.
 */

import assert from "node:assert/strict";
import { connectCluster, type NatsConnection } from "../../src/cluster/connect.ts";
import { ManualClock } from "../../src/clock/clock.ts";
import { openAccounts } from "../../src/store/nats/accounts.ts";
import { NatsStoreContext } from "../../src/store/nats/context.ts";
import { change, openRecords, read } from "../../src/store/nats/kv_records.ts";
import { destroyNatsStore } from "../../src/store/nats/nats_store.ts";
import { openSocial } from "../../src/store/nats/social.ts";
import type { NamedUser } from "../../src/store/types.ts";
import { HASH } from "../helpers/password_hash.ts";
import { natsTest } from "../helpers/nats.ts";
import type { NatsCluster } from "../helpers/nats.ts";

type Parts = Awaited<ReturnType<typeof openAccounts>> & Awaited<ReturnType<typeof openSocial>>;

interface Node {
  nc: NatsConnection;
  ctx: NatsStoreContext;
  store: Parts;
}

/** Runs `fn` with `count` nodes on a fresh prefix, node i connected to server i. */
async function withNodes(
  cluster: NatsCluster,
  count: number,
  fn: (nodes: Node[], clock: ManualClock) => Promise<void>,
): Promise<void> {
  const prefix = `t${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const clock = new ManualClock();
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const nc = await connectCluster([cluster.urls[i % cluster.urls.length]], {
        name: `parley-two-nodes-${i}`,
      });
      const ctx = await NatsStoreContext.open(nc, { worldBacklog: 0, clock, prefix });
      const [accounts, social] = await Promise.all([openAccounts(ctx), openSocial(ctx)]);
      nodes.push({ nc, ctx, store: { ...accounts, ...social } });
    }
    await fn(nodes, clock);
  } finally {
    if (nodes.length > 0) await destroyNatsStore(nodes[0].nc, prefix);
    for (const n of nodes) await n.nc.close();
  }
}

const user = (name: string) => ({ name, password: HASH, created: new Date() });
const named = (user: string): NamedUser => ({ user, name: user.toUpperCase() });

natsTest(
  "writeIf(): of writers naming one revision at once, through three servers, one wins",
  async (cluster) => {
    await withNodes(cluster, 3, async (nodes) => {
      const buckets = await Promise.all(nodes.map((n) => openRecords(n.ctx, "race")));
      for (let round = 0; round < 10; round++) {
        const key = `counter.${round}`;
        await change<number, void>(buckets[0], key, () => ({ next: 0, result: undefined }));
        // Twelve increments at once, four per server: a lost update would leave fewer than 12.
        await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            change<number, void>(buckets[i % 3], key, (n) => ({
              next: (n ?? 0) + 1,
              result: undefined,
            }))),
        );
        assert.equal((await read<number>(buckets[1], key)).value, 12, `round ${round}`);
      }
    });
  },
);

natsTest("two nodes registering look-alike names at once: exactly one wins", async (cluster) => {
  await withNodes(cluster, 2, async ([a, b]) => {
    for (let round = 0; round < 10; round++) {
      const [ra, rb] = await Promise.all([
        a.store.users.create(user(`zoe${round}`)),
        b.store.users.create(user(`Z0E${round}`)),
      ]);
      assert.equal(Number(ra) + Number(rb), 1, `round ${round}: ${ra} and ${rb}`);
      const winner = ra ? `zoe${round}` : `Z0E${round}`;
      assert.equal(await a.store.users.lookalike(`zoe${round}`), winner);
      assert.equal(await b.store.users.lookalike(`z0e${round}`), winner);
      // The same name on both nodes at once: one account.
      const same = await Promise.all([
        a.store.users.create(user(`yan${round}`)),
        b.store.users.create(user(`YAN${round}`)),
      ]);
      assert.equal(same.filter(Boolean).length, 1, `round ${round}`);
    }
  });
});

natsTest("two nodes accepting and adding one friendship at once agree on it", async (cluster) => {
  await withNodes(cluster, 2, async ([a, b]) => {
    for (let round = 0; round < 5; round++) {
      const ann = named(`ann${round}`);
      const ben = named(`ben${round}`);
      assert.equal(await a.store.friends.request(ann, ben, 10), "requested");
      // Ben accepts on one node while Ann adds him on the other, and Ben accepts twice.
      const results = await Promise.all([
        b.store.friends.acceptRequest(ann, ben),
        a.store.friends.add(ann, ben),
        a.store.friends.acceptRequest(ann, ben),
      ]);
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
      // An accept answers the request; an add (as in every store) leaves it waiting.
      const waiting = results[1] ? [ann] : [];
      for (const node of [a, b]) {
        assert.deepEqual(await node.store.friends.list(ann.user), [ben]);
        assert.deepEqual(await node.store.friends.list(ben.user), [ann]);
        assert.deepEqual(await node.store.friends.requests(ben.user), {
          incoming: waiting,
          outgoing: [],
        });
      }
      await b.store.friends.dropRequest(ann.user, ben.user);
      // Ending it on both at once: one remove finds it.
      const ends = await Promise.all([
        a.store.friends.remove(ann.user, ben.user),
        b.store.friends.remove(ben.user, ann.user),
      ]);
      assert.equal(ends.filter(Boolean).length, 1);
      assert.deepEqual(await b.store.friends.list(ann.user), []);
    }
  });
});

natsTest(
  "many friendships of one user changed from two nodes at once all show in its list",
  async (cluster) => {
    await withNodes(cluster, 2, async ([a, b]) => {
      const hub = named("hub");
      const others = Array.from({ length: 16 }, (_, i) => named(`f${i}`));
      const added = await Promise.all(
        others.map((o, i) => (i % 2 ? a : b).store.friends.add(hub, o)),
      );
      assert.ok(added.every(Boolean));
      const sorted = [...others].sort((x, y) => x.user < y.user ? -1 : 1);
      assert.deepEqual(await a.store.friends.list("hub"), sorted);
      assert.deepEqual(await b.store.friends.list("hub"), sorted);
      await Promise.all(
        others.slice(0, 8).map((o, i) => (i % 2 ? b : a).store.blocks.add(o, hub, 5)),
      );
      assert.equal((await a.store.blocks.either("hub")).size, 8);
      assert.equal(await b.store.friends.count("hub"), 16);
    });
  },
);

natsTest("concurrent joins through two nodes never pass a group's size limit", async (cluster) => {
  await withNodes(cluster, 2, async ([a, b]) => {
    const g = await a.store.groups.create("race", "u0", [named("u0")]);
    const joiners = Array.from({ length: 20 }, (_, i) => named(`j${i}`));
    const results = await Promise.all(
      joiners.map((m, i) => (i % 2 ? a : b).store.groups.addMember(g.id, m, 5)),
    );
    assert.equal(results.filter((r) => r === "added").length, 4);
    assert.equal(results.filter((r) => r === "full").length, 16);
    assert.equal((await b.store.groups.get(g.id))?.size, 5);
    assert.equal((await a.store.groups.members(g.id)).length, 5);
    const counts = await Promise.all(joiners.map((m) => b.store.groups.countOf(m.user)));
    assert.equal(counts.filter((c) => c === 1).length, 4, "each member's own index agrees");
    // Everyone leaves through either node at once: the group goes, and no index keeps it.
    const members = await a.store.groups.members(g.id);
    await Promise.all(
      members.map((m, i) => (i % 2 ? a : b).store.groups.removeMember(g.id, m.user)),
    );
    assert.equal(await b.store.groups.get(g.id), null);
    for (const m of members) assert.equal(await a.store.groups.countOf(m.user), 0);
    // Ids from both nodes at once never collide.
    const made = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).store.groups.create(`g${i}`, "u0", [])),
    );
    assert.equal(new Set(made.map((x) => x.id)).size, 6);
  });
});

natsTest(
  "a token rotated on one node is seen by the other; a race to resume it has one winner",
  async (cluster) => {
    await withNodes(cluster, 2, async ([a, b]) => {
      const first = await a.store.tokens.issue("ula", 60_000, 16);
      const r1 = await b.store.tokens.resume(first.token, 0);
      assert.equal(r1.kind, "ok");
      if (r1.kind !== "ok") return;
      assert.equal((await a.store.tokens.familyOf(r1.token))?.id, first.family);
      assert.equal((await a.store.tokens.resume(first.token, 0)).kind, "reused");
      assert.equal(await b.store.tokens.familyOf(r1.token), null, "the family ended for both");

      for (let round = 0; round < 5; round++) {
        const t = await b.store.tokens.issue("una", 60_000, 16);
        // The same token on both nodes at once, no grace: one rotation, the other is reuse.
        const kinds = (await Promise.all([
          a.store.tokens.resume(t.token, 0),
          b.store.tokens.resume(t.token, 0),
        ])).map((r) => r.kind).sort();
        assert.deepEqual(kinds, ["ok", "reused"], `round ${round}`);
      }
      // A revokeAll on one node ends what the other issued.
      const other = await b.store.tokens.issue("vera", 60_000, 16);
      await a.store.tokens.revokeAll("vera");
      assert.equal((await b.store.tokens.resume(other.token, 0)).kind, "unknown");
    });
  },
);

natsTest("an invite code is taken once, by one of two nodes trying at once", async (cluster) => {
  await withNodes(cluster, 2, async ([a, b]) => {
    for (let round = 0; round < 5; round++) {
      const code = `code-${round}`;
      await a.store.invites.add(code, 60_000);
      const taken = await Promise.all([a.store.invites.take(code), b.store.invites.take(code)]);
      assert.equal(taken.filter((x) => x !== null).length, 1);
    }
  });
});
