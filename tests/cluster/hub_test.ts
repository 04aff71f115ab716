/**
 * The cluster hub over real NATS, with stand-in sessions and each node's own ManualClock: the
 * directory of remote users, routed pushes and pokes, the newest login winning whichever order
 * the news arrives in, a node that stops beating going offline with its users, and a node that
 * missed events reading the roster.
 */

import assert from "node:assert/strict";
import { connectCluster, type NatsConnection } from "../../src/cluster/connect.ts";
import { ManualClock } from "../../src/clock/clock.ts";
import { silentLogger } from "../../src/server/log.ts";
import { type ClusterEvents, ClusterHub } from "../../src/server/cluster/cluster_hub.ts";
import type { Session } from "../../src/server/session.ts";
import { natsBus } from "../../src/server/cluster/hub_bus.ts";
import type { Value } from "../../src/protocol/value.ts";
import { natsTest } from "../helpers/nats.ts";
import type { NatsCluster } from "../helpers/nats.ts";

interface Fake {
  session: Session;
  pushes: [number, Value][];
  pokes: number;
}

function fakeSession(user: string, family: string | null = null): Fake {
  const fake: Fake = { pushes: [], pokes: 0, session: null as unknown as Session };
  fake.session = {
    login: { user, name: user.toUpperCase(), family },
    push: (type: number, body: Value) => void fake.pushes.push([type, body]),
    pump: { poke: () => void fake.pokes++ },
  } as unknown as Session;
  return fake;
}

interface Node {
  hub: ClusterHub;
  clock: ManualClock;
  nc: NatsConnection;
  taken: Session[];
  offline: { user: string; nodeGone: boolean }[];
}

async function node(nats: NatsCluster, prefix: string, id: string, start = 0): Promise<Node> {
  // One NATS server for all: a subscription made on one server reaches the others a moment later
  // (the beats and rosters repair what is missed meanwhile, as the simulation shows; here each
  // test checks one path on its own).
  const nc = await connectCluster([nats.urls[0]], { name: `hub-test-${id}` });
  const clock = new ManualClock(start);
  const hub = new ClusterHub({
    bus: natsBus(nc),
    prefix,
    clock,
    log: silentLogger,
    metrics: { messageOut() {} },
    beatMs: 1000,
    nodeTimeoutMs: 3000,
  }, id);
  const n: Node = { hub, clock, nc, taken: [], offline: [] };
  hub.events = {
    takenOver: (s) => void n.taken.push(s),
    end: () => {},
    wentOffline: (u, nodeGone) => void n.offline.push({ user: u.user, nodeGone }),
  } satisfies ClusterEvents;
  await hub.start();
  return n;
}

async function close(...nodes: Node[]): Promise<void> {
  for (const n of nodes) {
    await n.hub.close();
    await n.nc.close();
  }
}

/** Waits (real time: NATS delivers on its own) until `ok` holds. */
async function until(ok: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const prefix = () => `h${crypto.randomUUID().slice(0, 8)}`;

natsTest(
  "hub: a user attached on one node is online on the other, and pushes and pokes reach it",
  async (nats) => {
    const p = prefix();
    const a = await node(nats, p, "11");
    const b = await node(nats, p, "22");
    try {
      const alice = fakeSession("alice");
      a.hub.attach("alice", alice.session);
      await until(() => b.hub.isOnline("alice"), "B sees alice");
      assert.equal(b.hub.nodeOf("alice"), "11");
      assert.deepEqual([...b.hub.online()], [{ user: "alice", name: "ALICE" }]);
      b.hub.push("alice", 42, { hello: "from B" });
      await until(() => alice.pushes.length === 1, "alice gets B's push");
      assert.deepEqual(alice.pushes[0], [42, { hello: "from B" }]);
      b.hub.offer([{ user: "alice", seq: 7 } as never]);
      await until(() => alice.pokes === 1, "alice's pump is poked");
      a.hub.detach("alice", alice.session);
      await until(() => !b.hub.isOnline("alice"), "B sees alice go");
      assert.deepEqual(b.offline, [{ user: "alice", nodeGone: false }]);
    } finally {
      await close(a, b);
    }
  },
);

natsTest(
  "hub: the newer login wins on both nodes, whichever node hears of the other first",
  async (nats) => {
    const p = prefix();
    // B's clock is ahead: its login is the newer one.
    const a = await node(nats, p, "11", 0);
    const b = await node(nats, p, "22", 60_000);
    try {
      const onA = fakeSession("alice", "fam-a");
      const onB = fakeSession("alice", "fam-b");
      a.hub.attach("alice", onA.session);
      b.hub.attach("alice", onB.session);
      await until(() => a.taken.length === 1, "A's session is taken over");
      assert.equal(a.taken[0], onA.session);
      assert.equal(a.hub.sessionOf("alice"), undefined);
      assert.equal(a.hub.nodeOf("alice"), "22");
      // B keeps its session: A's older login does not take it over.
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(b.taken, []);
      assert.equal(b.hub.sessionOf("alice"), onB.session);
      // The takeover is no departure: nobody is told alice went offline.
      assert.deepEqual(b.offline, []);
    } finally {
      await close(a, b);
    }
  },
);

natsTest(
  "hub: a node that stops beating is gone after the timeout, and its users with it",
  async (nats) => {
    const p = prefix();
    const a = await node(nats, p, "11");
    const b = await node(nats, p, "22");
    try {
      a.hub.attach("alice", fakeSession("alice").session);
      await until(() => b.hub.isOnline("alice"), "B sees alice");
      await a.hub.close(); // A dies without a word
      b.clock.advance(2000);
      assert.ok(b.hub.isOnline("alice"), "not yet: within the timeout");
      b.clock.advance(2500);
      assert.ok(!b.hub.isOnline("alice"), "gone with its node");
      assert.deepEqual(b.offline, [{ user: "alice", nodeGone: true }]);
      assert.equal(b.hub.peers, 0);
    } finally {
      await b.hub.close();
      await a.nc.close();
      await b.nc.close();
    }
  },
);

natsTest(
  "hub: a node that starts later learns who is online from the others' rosters",
  async (nats) => {
    const p = prefix();
    const a = await node(nats, p, "11");
    try {
      a.hub.attach("alice", fakeSession("alice").session);
      a.hub.attach("bob", fakeSession("bob").session);
      const b = await node(nats, p, "22");
      try {
        // A's next beats tell B its presence version: B asks for the roster (again, should an
        // answer not come: B's clock moves too, so that a request times out).
        await until(() => {
          a.clock.advance(500);
          b.clock.advance(500);
          return b.hub.isOnline("alice") && b.hub.isOnline("bob");
        }, "B learns the roster");
        assert.equal(b.hub.clusterOnline, 2);
      } finally {
        await close(b);
      }
    } finally {
      await close(a);
    }
  },
);

natsTest(
  "hub: a user who appears on a node just after this node queued for them is poked there",
  async (nats) => {
    const p = prefix();
    const a = await node(nats, p, "11");
    const b = await node(nats, p, "22");
    try {
      // A queues for bob while it knows of him nowhere (his node died, or his login is news
      // still on its way): the poke has nowhere to go.
      a.hub.offer([{ user: "bob", seq: 7 } as never]);
      // Bob's new session on B may have read his inbox before A's item landed.
      const bob = fakeSession("bob");
      b.hub.attach("bob", bob.session);
      await until(() => bob.pokes === 1, "A pokes bob's pump at B once it hears where he is");
      // Long after, a login elsewhere is no news of anything A queued.
      a.clock.advance(20_000);
      const carol = fakeSession("carol");
      a.hub.offer([{ user: "carol", seq: 8 } as never]);
      a.clock.advance(20_000);
      a.clock.advance(1000); // a beat: the sweep forgets what was queued that long ago
      b.hub.attach("carol", carol.session);
      await until(() => a.hub.isOnline("carol"), "A sees carol");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(carol.pokes, 0);
    } finally {
      await close(a, b);
    }
  },
);
