/**
 * When the cluster hub asks its node to check its sessions against the store (events.recheck):
 * an end lost on the way (core NATS is at most once) shows as a gap in its sender's versions at
 * the next beat; and every recheckMs in any case, for `parley admin`'s ends, which have none.
 * Two hubs over an in-memory bus that can drop what one node sends, on one ManualClock.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { ClusterHub } from "../../src/server/cluster/cluster_hub.ts";
import type { BusHandler, HubBus } from "../../src/server/cluster/hub_bus.ts";
import { silentLogger } from "../../src/server/log.ts";
import type { Session } from "../../src/server/session.ts";

class Net {
  readonly subs = new Map<string, Map<string, BusHandler>>();
  /** Nodes whose messages are lost. */
  readonly dropping = new Set<string>();
  /** Nodes that answer no request, and whose ends are lost (their beats still go). */
  readonly mute = new Set<string>();
  readonly #reconnected = new Map<string, () => void>();

  /** As if `node`'s NATS connection came back after a break. */
  reconnect(node: string): void {
    this.#reconnected.get(node)?.();
  }

  bus(node: string): HubBus {
    const subs = new Map<string, BusHandler>();
    this.subs.set(node, subs);
    const deliver = (subject: string, data: Uint8Array, respond: BusHandler | null) => {
      const lost = this.dropping.has(node) ||
        (this.mute.has(node) && subject.endsWith(".end"));
      for (const [to, s] of this.subs) {
        const refused = this.mute.has(to) && respond !== null;
        if (to !== node && !lost && !refused) s.get(subject)?.(data, respond as never);
      }
    };
    return {
      publish: (subject, data) => deliver(subject, data, null),
      subscribe: (subject, handle) => {
        subs.set(subject, handle);
        return () => subs.delete(subject);
      },
      request: (subject, data) =>
        new Promise((resolve, reject) => {
          let answered = false;
          deliver(
            subject,
            data,
            ((answer: Uint8Array) => {
              answered = true;
              resolve(answer);
            }) as never,
          );
          if (!answered) reject(new Error("no answer"));
        }),
      onReconnect: (handle) => this.#reconnected.set(node, handle),
      flush: () => Promise.resolve(),
      closed: false,
    };
  }
}

const settle = () => new Promise((r) => setTimeout(r, 0));

/** `n` beats go by. */
async function beats(clock: ManualClock, n: number) {
  for (let i = 0; i < n; i++) {
    clock.advance(1000);
    await settle();
  }
}

async function twoHubs(recheckMs = 60_000) {
  const clock = new ManualClock(0);
  const net = new Net();
  const checks: { node: string; tokens: boolean }[] = [];
  const signals: AbortSignal[] = [];
  /** While set, each recheck waits for it (a pass still reading). */
  const slow: { until: Promise<void> | null } = { until: null };
  const hubs: ClusterHub[] = [];
  for (const id of ["1", "2"]) {
    const hub = new ClusterHub({
      bus: net.bus(id),
      prefix: "t",
      clock,
      log: silentLogger,
      metrics: { messageOut() {} },
      beatMs: 1000,
      nodeTimeoutMs: 3000,
      recheckMs,
    }, id);
    hub.events = {
      takenOver() {},
      end() {},
      wentOffline() {},
      recheck: async (tokens, signal) => {
        checks.push({ node: id, tokens });
        signals.push(signal);
        await slow.until;
      },
    };
    await hub.start();
    hubs.push(hub);
  }
  // Each hears the other's beat and reads its roster: both know each other's version.
  clock.advance(1000);
  await settle();
  return { clock, net, checks, signals, slow, hubs };
}

Deno.test("cluster hub: an end lost on the way shows as a gap at the next beat, and the node rechecks its sessions", async () => {
  const { clock, net, checks, hubs } = await twoHubs();
  assert.deepEqual(checks, [], "no recheck while nothing was lost");
  net.dropping.add("1");
  hubs[0].endElsewhere("vic", "The password changed");
  net.dropping.delete("1");
  clock.advance(1000);
  await settle();
  assert.deepEqual(checks, [{ node: "2", tokens: true }]);
  // While the roster does not come, later beats are no new loss: one recheck, not one a beat.
  net.mute.add("1");
  hubs[0].endElsewhere("vic", "The password changed");
  await beats(clock, 4);
  assert.equal(checks.length, 2);
  // Nothing was lost past the version that showed the loss: the roster brings no other.
  net.mute.delete("1");
  await beats(clock, 2);
  assert.equal(checks.length, 2);
  for (const h of hubs) await h.close();
});

Deno.test("cluster hub: an end lost while the peer's roster does not come is rechecked when it comes", async () => {
  const { clock, net, checks, hubs } = await twoHubs();
  net.mute.add("1");
  hubs[0].endElsewhere("vic", "The tokens were revoked"); // lost
  await beats(clock, 1);
  assert.deepEqual(checks, [{ node: "2", tokens: true }], "the loss shows: recheck");
  // That recheck may have read eve's tokens before node 1 revoked them; her end is lost too,
  // and node 2 knows no version of node 1 until the roster comes.
  hubs[0].endElsewhere("eve", "The tokens were revoked");
  await beats(clock, 3);
  assert.equal(checks.length, 1, "no recheck a beat while the roster does not come");
  net.mute.delete("1");
  await beats(clock, 2);
  assert.deepEqual(checks, [1, 2].map(() => ({ node: "2", tokens: true })), "eve's end rechecked");
  for (const h of hubs) await h.close();
});

Deno.test("cluster hub: events heard while the peer's roster does not come are no loss when it comes", async () => {
  const { clock, net, checks, hubs } = await twoHubs();
  net.mute.add("1");
  hubs[0].endElsewhere("vic", "The tokens were revoked"); // lost
  await beats(clock, 1);
  assert.equal(checks.length, 1);
  // Presence still goes: node 2 hears each version past the one it rechecked for.
  const session = { login: { user: "amy", name: "amy", family: null } } as unknown as Session;
  hubs[0].attach("amy", session);
  hubs[0].detach("amy", session);
  await beats(clock, 2);
  net.mute.delete("1");
  await beats(clock, 2);
  assert.equal(checks.length, 1, "nothing lost past the recheck");
  for (const h of hubs) await h.close();
});

Deno.test("cluster hub: every recheckMs the node reads its sessions' user records again", async () => {
  const { clock, checks, hubs } = await twoHubs(5000);
  clock.advance(3000);
  await settle();
  assert.deepEqual(checks, []);
  clock.advance(2000);
  await settle();
  assert.deepEqual(checks, [{ node: "1", tokens: false }, { node: "2", tokens: false }]);
  for (const h of hubs) await h.close();
});

Deno.test("cluster hub: a peer given up for silence and heard again may have sent ends: recheck", async () => {
  const { clock, net, checks, hubs } = await twoHubs();
  net.dropping.add("1");
  clock.advance(5000); // node 2 gives node 1 up
  await settle();
  assert.equal(hubs[1].peers, 0);
  net.dropping.delete("1");
  clock.advance(1000);
  await settle();
  assert.equal(hubs[1].peers, 1);
  assert.ok(checks.some((c) => c.node === "2" && c.tokens), "node 2 rechecked");
  for (const h of hubs) await h.close();
});

Deno.test("cluster hub: a NATS reconnect supersedes a recheck still running, which is told to stop", async () => {
  const { net, checks, signals, slow, hubs } = await twoHubs();
  let release = () => {};
  slow.until = new Promise((r) => release = r);
  // Reconnects in a row (a flapping link) while a pass reads: each starts afresh.
  for (let i = 0; i < 3; i++) {
    net.reconnect("2");
    await settle();
  }
  assert.deepEqual(checks, [1, 2, 3].map(() => ({ node: "2", tokens: true })));
  assert.deepEqual(
    signals.map((s) => s.aborted),
    [true, true, false],
    "only the newest pass goes on reading",
  );
  release();
  await settle();
  assert.equal(checks.length, 3, "a stopped pass starts no other");
  for (const h of hubs) await h.close();
});
