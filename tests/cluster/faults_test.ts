/**
 * Faults under sustained load (issue 22): three real nats-server processes, three Parley nodes
 * as child processes, and sender/receiver pairs whose two users are on different nodes, each
 * client a real Link with every node's address (the terminal client's failover). While the
 * senders send without pause: (a) a Parley node is SIGKILLed (its clients resume at another
 * node, resending what was not acknowledged with the same ids) and later started again; (b) a
 * NATS server is SIGKILLed and later restarted (it catches up from the others); (c) both, another
 * Parley node and then another NATS server, so the restarted NATS server must by then hold its
 * share of the quorum. Then the senders stop and every receiver must get every message that was
 * answered with SENT, and be shown none twice.
 *
 * With PARLEY_TEST_REPORT set, the figures are printed as one JSON line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
// client.ts installs the Deno client platform the links connect with.
import type { ConnectOptions } from "../../src/client/client.ts";
import "../../src/client/client.ts";
import { connectFirst } from "../../src/client/endpoints.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import { Link } from "../../src/client/link.ts";
import { ClusterPins } from "../../src/client/pins.ts";
import { SeenMessages } from "../../src/client/seen.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { NatsCluster, natsTestOptions } from "../helpers/nats.ts";
import { NodeProcesses } from "../helpers/node_processes.ts";

const HOST = "127.0.0.1";
const PAIRS = 10;
/** Each sender sends one message this often, for the whole run. */
const SEND_EVERY_MS = 40;
/** A sender whose link is down (or slow) queues at most this many sends before it skips ticks. */
const MAX_IN_FLIGHT = 4;
/** How long each stretch of load between faults lasts. */
const STRETCH_MS = 1500;

/** SeenMessages that also counts the duplicates it dropped (redelivered PASS frames). */
class CountingSeen extends SeenMessages {
  dropped = 0;
  override first(from: string, id: Uint8Array): boolean {
    const first = super.first(from, id);
    if (!first) this.dropped++;
    return first;
  }
}

interface User {
  name: string;
  /** The node its first connection went to. */
  home: number;
  link: Link;
  seen: CountingSeen;
  statuses: string[];
  /** Per message key (sender/id), how many times the application was shown it. */
  shown: Map<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` holds, checking every 50 ms; fails with `what()` after `ms`. */
async function until(done: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${what()}`);
    await sleep(50);
  }
}

Deno.test({
  name: "cluster faults under load: SENT messages all arrive, none shown twice",
  ...natsTestOptions,
  fn: async () => {
    const started = Date.now();
    const nats = await NatsCluster.start();
    const killNats = () => nats.killNow();
    globalThis.addEventListener("unload", killNats);
    let nodes: NodeProcesses | null = null;
    const users: User[] = [];
    const dir = await Deno.makeTempDir({ prefix: "parley-faults-" });
    try {
      nodes = await NodeProcesses.start(nats, 3, { nodeTimeoutMs: 3000 });
      const n = nodes;
      const ports = [0, 1, 2].map((i) => n.port(i));
      const knownHosts = new KnownHosts(join(dir, "known_hosts"));
      /** A client's options: its home node first, then the others, pinned as one server. */
      const optionsFor = (home: number, seen: SeenMessages): ConnectOptions => {
        const order = [0, 1, 2].map((k) => ports[(home + k) % 3]);
        return {
          host: HOST,
          port: order[0],
          alternates: order.slice(1).map((port) => ({ host: HOST, port })),
          knownHosts: new ClusterPins(knownHosts, order.map((p) => `${HOST}:${p}`)),
          seen,
        };
      };

      // Sender i on node i % 3, its receiver on the next node.
      const names = Array.from({ length: PAIRS }, (_, i) => [`sender${i}`, `receiver${i}`]);
      const setup = await connectFirst(optionsFor(0, new SeenMessages()));
      for (const name of names.flat()) await setup.client.register(name, `password-${name}`);
      setup.client.close();
      const join_ = async (name: string, home: number): Promise<User> => {
        const seen = new CountingSeen();
        const statuses: string[] = [];
        const shown = new Map<string, number>();
        const options = optionsFor(home, seen);
        const { client, at } = await connectFirst(options);
        await client.login(name, `password-${name}`);
        const link = new Link(options, {
          status: (text) => statuses.push(text),
          event: (m) => {
            if (m.type !== MsgType.PASS) return;
            const b = m.body as { source_username: string; id: Uint8Array };
            const key = SeenMessages.key(b.source_username, b.id);
            shown.set(key, (shown.get(key) ?? 0) + 1);
          },
        });
        link.open(client, at);
        return { name, home: (home + at) % 3, link, seen, statuses, shown };
      };
      for (let i = 0; i < PAIRS; i++) {
        users.push(await join_(names[i][0], i % 3), await join_(names[i][1], (i + 1) % 3));
      }
      const senders = users.filter((_, k) => k % 2 === 0);
      const receivers = users.filter((_, k) => k % 2 === 1);

      // ---- the load ----
      let sent = 0;
      const acknowledged = new Map<string, number>(); // key → receiver index
      const failures: string[] = [];
      let sending = true;
      const inFlight = new Set<Promise<void>>();
      const loops = senders.map((s, i) =>
        (async () => {
          let mine = 0;
          for (let k = 0; sending; k++) {
            if (mine < MAX_IN_FLIGHT) {
              sent++;
              mine++;
              const p = s.link.sendText({ user: receivers[i].name }, `${s.name} #${k}`).then(
                (receipt) => void acknowledged.set(SeenMessages.key(s.name, receipt.id), i),
                (e) => void failures.push(`${s.name}: ${(e as Error).message}`),
              ).finally(() => {
                mine--;
                inFlight.delete(p);
              });
              inFlight.add(p);
            }
            await sleep(SEND_EVERY_MS);
          }
        })()
      );
      /** Load for `ms`, then the figures so far must have grown. */
      const stretch = async (ms: number, what: string) => {
        const before = acknowledged.size;
        await sleep(ms);
        // Service continues: something was acknowledged in this stretch (waits if it is slow).
        await until(
          () => acknowledged.size > before,
          20_000,
          () => `nothing acknowledged after ${what}; failures: ${failures.slice(-3).join(" | ")}`,
        );
      };
      /** Every user whose link was at node `i` is connected elsewhere. */
      const movedFrom = async (i: number) => {
        await until(
          () =>
            users.every((u) =>
              u.link.client !== null && u.link.client.address !== `${HOST}:${ports[i]}`
            ),
          20_000,
          () =>
            `clients still not moved from node ${i}: ${
              users.filter((u) => u.link.client?.address !== undefined).length
            } connected; ${users.map((u) => u.statuses.at(-1) ?? "").join(" | ")}`,
        );
      };

      await stretch(STRETCH_MS, "the start");
      const phases: Record<string, number> = {};
      const mark = (phase: string) => phases[phase] = Date.now() - started;

      // (a) A Parley node dies; its clients resume at the others; it comes back.
      mark("a");
      await n.kill(0);
      await movedFrom(0);
      await stretch(STRETCH_MS, "node 0 died");
      await n.restart(0);
      await stretch(STRETCH_MS / 2, "node 0 came back");

      // (b) A NATS server dies; service continues; it comes back and catches up.
      mark("b");
      await nats.kill(1);
      await stretch(STRETCH_MS * 2, "NATS server 1 died");
      await nats.restart(1);
      await stretch(STRETCH_MS, "NATS server 1 came back");

      // (c) Another Parley node, then another NATS server: the quorum is now NATS 0 and the
      // restarted NATS 1, which must have caught up.
      mark("c");
      await n.kill(1);
      await movedFrom(1);
      await nats.kill(2);
      await stretch(STRETCH_MS * 2, "node 1 and NATS server 2 died");
      await nats.restart(2);
      await n.restart(1);
      await stretch(STRETCH_MS / 2, "NATS server 2 and node 1 came back");

      // ---- the end: every acknowledged message reaches its receiver ----
      mark("end");
      sending = false;
      await Promise.all(loops);
      await until(() => inFlight.size === 0, 30_000, () => `${inFlight.size} sends still open`);
      const delivered = () => receivers.reduce((sum, r) => sum + r.shown.size, 0);
      const missing = () =>
        [...acknowledged].filter(([key, i]) => !receivers[i].shown.has(key)).length;
      await until(
        () => missing() === 0,
        30_000,
        () => `${missing()} of ${acknowledged.size} acknowledged messages not delivered`,
      ).catch(() => {}); // the figures below say what is missing
      const lost = missing();

      // Presence came through it all: each node lists every user online (a dead node's users
      // moved before the others gave it up, so none of them ever went offline).
      const everyone = users.map((u) => u.name).sort().join(",");
      const whoDeadline = Date.now() + 15_000;
      const whoByNode = new Map<string, string>();
      for (const u of users) {
        const c = u.link.client;
        if (!c || whoByNode.has(c.address)) continue;
        while (true) {
          const listed = (await c.who()).users.map((n) => n.toLowerCase()).sort().join(",");
          whoByNode.set(c.address, listed);
          if (listed === everyone || Date.now() > whoDeadline) break;
          await sleep(200);
        }
      }
      const doubled = users.reduce(
        (sum, u) => sum + [...u.shown.values()].filter((times) => times > 1).length,
        0,
      );
      const figures = {
        test: "cluster_faults",
        pairs: PAIRS,
        sent,
        acknowledged: acknowledged.size,
        delivered: delivered(),
        lost,
        doubled,
        duplicateFrames: users.reduce((sum, u) => sum + u.seen.dropped, 0),
        failedSends: failures.length,
        failureReasons: [...new Set(failures.map((f) => f.replace(/^sender\d+: /, "")))],
        reconnects: users.reduce(
          (sum, u) => sum + u.statuses.filter((s) => s.startsWith("Reconnected")).length,
          0,
        ),
        presenceEverywhere: [...whoByNode.values()].every((listed) => listed === everyone),
        phasesMs: phases,
        totalMs: Date.now() - started,
      };
      if (Deno.env.get("PARLEY_TEST_REPORT")) console.log(JSON.stringify(figures));
      if (Deno.env.get("PARLEY_TEST_NODE_LOGS")) console.log(n.logs());
      assert.equal(lost, 0, `lost acknowledged messages: ${JSON.stringify(figures)}`);
      assert.equal(doubled, 0, `messages shown twice: ${JSON.stringify(figures)}`);
      assert.ok(figures.presenceEverywhere, `presence: ${JSON.stringify([...whoByNode])}`);
      // Delivered counts acknowledged ones and any whose SENT was lost with a connection.
      assert.ok(delivered() >= acknowledged.size, JSON.stringify(figures));
      assert.ok(
        acknowledged.size >= sent * 0.8,
        `most messages get through: ${JSON.stringify(figures)} ${failures.slice(0, 5).join(" | ")}`,
      );
      for (const u of users) assert.equal(await Promise.race([u.link.ended, "open"]), "open");
    } finally {
      for (const u of users) u.link.close();
      await nodes?.stop();
      await nats.stop();
      globalThis.removeEventListener("unload", killNats);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
