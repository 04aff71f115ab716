/**
 * A seeded, deterministic simulation of the cluster hub's directory (src/server/cluster/
 * cluster_hub.ts): several real ClusterHubs over a simulated network that delivers each
 * sender's messages to each receiver in order (as NATS does) but interleaves senders at random,
 * loses messages while a node is cut off, and answers requests late or never. Users log in and
 * out on random nodes (often the same user on two nodes at once), nodes are cut off and come
 * back, die without a word and new ones start, and time moves on one ManualClock whose wall time
 * each node reads with its own skew.
 *
 * Checked after every step: the hub's own invariants (a user of a node is not also in its
 * directory of remote users), and that no node drops a user another node told it of and still
 * holds (a roster read older than the events applied meanwhile did, until the next beat). At the end (nothing lost any more, time moved past several beats
 * and the node timeout): every user has a session on at most one live node; every live node
 * agrees on who is online and where; the newest login of a user (by login time, then node id)
 * is the one that holds the user whenever it is still attached; and each live node counts the
 * others as its peers.
 *
 *   deno run tests/sim/hub_sim.ts [--seeds N] [--from S] [--steps N]
 */

import { setImmediate } from "node:timers";
import { parseArgs } from "node:util";
import { type Clock, ManualClock } from "../../src/clock/clock.ts";
import { ClusterHub } from "../../src/server/cluster/cluster_hub.ts";
import { openEnvelope } from "../../src/server/cluster/bus.ts";
import type { BusHandler, HubBus } from "../../src/server/cluster/hub_bus.ts";
import type { LogFields, Logger } from "../../src/server/log.ts";
import type { Session } from "../../src/server/session.ts";
import { prng } from "./delivery_sim.ts";

const BEAT_MS = 1000;
const NODE_TIMEOUT_MS = 4000;

interface Wire {
  subject: string;
  data: Uint8Array;
  /** Set for a request: delivers the answer back. */
  respond: ((data: Uint8Array) => void) | null;
  /** Set for an answer: hands it to the request waiting for it. */
  answer?: (data: Uint8Array) => void;
}

class SimNet {
  /** node → subject → handler */
  readonly subs = new Map<string, Map<string, BusHandler>>();
  /** "from>to" → messages in order */
  readonly queues = new Map<string, Wire[]>();
  /** Nodes cut off: what they send and what is sent to them is lost. */
  readonly cut = new Set<string>();
  readonly reconnects = new Map<string, (() => void)[]>();
  delivered = 0;
  lost = 0;
  /** Sees each message as it is handed to its receiver (the simulation's model of the news). */
  onDeliver: ((from: string, to: string, wire: Wire) => void) | null = null;

  constructor(private readonly rand: () => number, private readonly clock: Clock) {}

  #send(from: string, to: string, wire: Wire): void {
    if (this.cut.has(from) || this.cut.has(to)) {
      this.lost++;
      return;
    }
    const key = `${from}>${to}`;
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, q = []);
    q.push(wire);
  }

  #targets(subject: string): [string, BusHandler][] {
    const out: [string, BusHandler][] = [];
    for (const [node, subs] of this.subs) {
      const h = subs.get(subject);
      if (h) out.push([node, h]);
    }
    return out;
  }

  bus(node: string): HubBus {
    this.subs.set(node, new Map());
    this.reconnects.set(node, []);
    return {
      publish: (subject, data) => {
        for (const [to] of this.#targets(subject)) {
          this.#send(node, to, { subject, data, respond: null });
        }
      },
      subscribe: (subject, handle) => {
        this.subs.get(node)?.set(subject, handle);
        return () => this.subs.get(node)?.delete(subject);
      },
      request: (subject, data, timeoutMs) =>
        new Promise<Uint8Array>((resolve, reject) => {
          let done = false;
          const timer = this.clock.setTimer(() => {
            if (!done) reject(new Error("timeout"));
            done = true;
          }, timeoutMs);
          const [target] = this.#targets(subject);
          if (!target) return; // no responder: the timeout answers
          this.#send(node, target[0], {
            subject,
            data,
            respond: (answer) =>
              this.#send(target[0], node, {
                subject: "_reply",
                data: answer,
                respond: null,
                answer: (d) => {
                  if (done) return;
                  done = true;
                  this.clock.clearTimer(timer);
                  resolve(d);
                },
              }),
          });
        }),
      onReconnect: (fn) => void this.reconnects.get(node)?.push(fn),
      flush: () => Promise.resolve(),
      get closed() {
        return false;
      },
    };
  }

  /** Delivers the head of one random non-empty queue; false when nothing is in flight. */
  deliverOne(): boolean {
    const keys = [...this.queues.keys()].filter((k) => this.queues.get(k)!.length > 0);
    if (keys.length === 0) return false;
    const key = keys[Math.floor(this.rand() * keys.length)];
    const wire = this.queues.get(key)!.shift()!;
    const [from, to] = key.split(">");
    this.delivered++;
    this.onDeliver?.(from, to, wire);
    if (wire.answer) wire.answer(wire.data);
    else this.subs.get(to)?.get(wire.subject)?.(wire.data, wire.respond);
    return true;
  }

  remove(node: string): void {
    this.subs.delete(node);
    this.reconnects.delete(node);
    for (const key of [...this.queues.keys()]) {
      if (key.startsWith(`${node}>`) || key.endsWith(`>${node}`)) this.queues.delete(key);
    }
  }
}

export class HubSimFailure extends Error {
  override name = "HubSimFailure";
}

interface Login {
  user: string;
  node: string;
  session: Session;
  at: number;
  /** The token family (device) of the login: a takeover names the newer login's. */
  family: string;
  loggedOut: boolean;
  kicked: boolean;
}

interface SimNode {
  id: string;
  hub: ClusterHub;
}

function fakeSession(user: string, family: string): Session {
  return {
    login: { user, name: user, family },
    push() {},
    pump: { poke() {} },
  } as unknown as Session;
}

/** The hub's log lines go to the trace (a failure shows what the hubs said). */
function traceLogger(node: string, trace: string[]): Logger {
  const line = (event: string, fields?: LogFields) =>
    void trace.push(`  [${node}] ${event} ${JSON.stringify(fields ?? {})}`);
  return { debug: () => {}, info: line, warn: line, error: line };
}

/** Runs every promise chain to its end (setImmediate comes after all microtasks). */
const settle = () => new Promise<void>((r) => setImmediate(r));

export interface HubSimResult {
  seed: number;
  logins: number;
  kicks: number;
  nodesKilled: number;
  delivered: number;
  lost: number;
}

export async function simulateHub(seed: number, steps: number): Promise<HubSimResult> {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const base = new ManualClock(0);
  const net = new SimNet(rand, base);
  const nodes: SimNode[] = [];
  const logins: Login[] = [];
  const trace: string[] = [];
  let nextNode = 1;
  let kicks = 0;
  let nodesKilled = 0;
  const users = ["ann", "ben", "cy", "dee", "eve"];

  /** A check failed inside a hub's callback, which the hub catches and logs: thrown after. */
  let failedInHub: string | null = null;
  const fail = (what: string): never => {
    throw new HubSimFailure(
      `seed ${seed}: ${what}\n  trace (last 40):\n    ${trace.slice(-40).join("\n    ")}`,
    );
  };

  async function startNode(): Promise<void> {
    const id = String(nextNode++);
    const skew = Math.floor(rand() * 400) - 200;
    const clock: Clock = {
      now: () => base.now(),
      wall: () => base.wall() + skew,
      setTimer: (fn, ms) => base.setTimer(fn, ms),
      clearTimer: (t) => base.clearTimer(t),
    };
    const hub = new ClusterHub({
      bus: net.bus(id),
      prefix: "sim",
      clock,
      log: traceLogger(id, trace),
      metrics: { messageOut() {} },
      beatMs: BEAT_MS,
      nodeTimeoutMs: NODE_TIMEOUT_MS,
    }, id);
    hub.events = {
      takenOver(session, family) {
        const fail = (what: string) => {
          failedInHub ??= what;
          throw new HubSimFailure(what);
        };
        const l = logins.find((x) => x.session === session);
        if (!l) fail("a session nobody logged in was taken over");
        l!.kicked = true;
        kicks++;
        const newer = logins.filter((x) =>
          x.user === l!.user && (x.at > l!.at || (x.at === l!.at && x.node > l!.node))
        );
        if (newer.length === 0) {
          fail(`${l!.user}@${l!.node} was kicked, but no login of it is newer`);
        }
        // The server revokes the kicked session's tokens unless the newer login is the same
        // device (family): a kick must name the family of the login that took over.
        if (!newer.some((x) => x.family === family)) {
          fail(`${l!.user}@${l!.node} was kicked by family ${family}, no newer login's`);
        }
        trace.push(`kick ${l!.user}@${l!.node}`);
      },
      end() {},
      wentOffline() {},
    };
    await hub.start();
    nodes.push({ id, hub });
    trace.push(`start node ${id} (skew ${skew})`);
  }

  // What each node was told by each other node's events, in order: "to>from" → the users
  // announced and not since withdrawn (user → login time), and when it last heard from it.
  const told = new Map<string, { last: number; on: Map<string, number> }>();
  /** Heard from more recently than this: no node can have given the sender up. */
  const RECENT_MS = NODE_TIMEOUT_MS - BEAT_MS;
  const subjects = { presence: "sim.hub.presence", beat: "sim.hub.beat", end: "sim.hub.end" };
  net.onDeliver = (from, to, wire) => {
    if (![subjects.presence, subjects.beat, subjects.end].includes(wire.subject)) return;
    const key = `${to}>${from}`;
    let model = told.get(key);
    // Silent long enough to have been given up: what the receiver knew of it may be gone.
    if (model && base.now() - model.last > RECENT_MS) model = undefined;
    if (!model) told.set(key, model = { last: 0, on: new Map() });
    model.last = base.now();
    if (wire.subject !== subjects.presence) return;
    const p = openEnvelope<{ op: string; user: string; at: number }>(wire.data).header;
    if (p.op === "on") model.on.set(p.user, p.at);
    else if (model.on.get(p.user) === p.at) model.on.delete(p.user);
  };
  /** A node heard lately that announced a user it still holds: every node shows it online. */
  const checkTold = (): void => {
    for (const n of nodes) {
      for (const m of nodes) {
        const model = told.get(`${n.id}>${m.id}`);
        if (m === n || !model || base.now() - model.last > RECENT_MS) continue;
        for (const [user, at] of model.on) {
          const held = m.hub.sessionOf(user);
          if (!held || m.hub.loginTime(held) !== at) continue;
          if (!n.hub.isOnline(user)) {
            fail(`node ${n.id} dropped ${user}, whom node ${m.id} announced and still holds`);
          }
        }
      }
    }
  };

  for (let i = 0; i < 3; i++) await startNode();

  for (let step = 0; step < steps; step++) {
    const r = rand();
    const live = nodes;
    if (r < 0.2) {
      const node = pick(live);
      const user = pick(users);
      // Two devices per user: the same device often logs in again on another node.
      const family = `${user}-${rand() < 0.5 ? "phone" : "laptop"}`;
      const session = fakeSession(user, family);
      const previous = node.hub.attach(user, session);
      if (previous) {
        const l = logins.find((x) => x.session === previous);
        if (l) l.kicked = true;
      }
      const at = node.hub.loginTime(session)!;
      logins.push({ user, node: node.id, session, at, family, loggedOut: false, kicked: false });
      trace.push(`login ${user}@${node.id} at ${at}`);
    } else if (r < 0.3) {
      const attached = logins.filter((l) =>
        !l.loggedOut && !l.kicked && nodes.some((n) => n.id === l.node)
      );
      if (attached.length > 0) {
        const l = pick(attached);
        const node = nodes.find((n) => n.id === l.node)!;
        if (node.hub.detach(l.user, l.session)) {
          l.loggedOut = true;
          trace.push(`logout ${l.user}@${l.node}`);
        }
      }
    } else if (r < 0.75) {
      for (let i = 0; i < 1 + Math.floor(rand() * 4); i++) net.deliverOne();
    } else if (r < 0.9) {
      base.advance(Math.floor(rand() * 600));
    } else if (r < 0.95) {
      // Cut a node off for a while, or let one back (its link "reconnects").
      const node = pick(live);
      if (net.cut.has(node.id)) {
        net.cut.delete(node.id);
        trace.push(`reconnect ${node.id}`);
        for (const fn of net.reconnects.get(node.id) ?? []) fn();
      } else {
        net.cut.add(node.id);
        trace.push(`cut ${node.id}`);
      }
    } else if (r < 0.975 && nodes.length > 2) {
      const node = pick(live);
      await node.hub.close();
      net.remove(node.id);
      net.cut.delete(node.id);
      nodes.splice(nodes.indexOf(node), 1);
      nodesKilled++;
      trace.push(`kill node ${node.id}`);
    } else if (nodes.length < 5) {
      await startNode();
    }
    try {
      await settle();
    } catch (e) {
      fail(`step ${step}: ${(e as Error).message}`);
    }
    if (failedInHub) fail(`step ${step}: ${failedInHub}`);
    checkTold();
  }

  // Quiesce: nothing is lost any more; time moves past several beats and the node timeout.
  for (const id of [...net.cut]) {
    net.cut.delete(id);
    for (const fn of net.reconnects.get(id) ?? []) fn();
  }
  for (let round = 0; round < 12; round++) {
    while (net.deliverOne()) await settle();
    base.advance(BEAT_MS);
    await settle();
    while (net.deliverOne()) await settle();
  }
  if (failedInHub) fail(`at the end: ${failedInHub}`);

  const liveIds = new Set(nodes.map((n) => n.id));
  for (const user of users) {
    const holders = nodes.filter((n) => n.hub.sessionOf(user) !== undefined);
    if (holders.length > 1) {
      fail(`${user} holds sessions on nodes ${holders.map((n) => n.id).join(", ")}`);
    }
    const holder = holders[0];
    for (const n of nodes) {
      if (n.hub.isOnline(user) !== (holder !== undefined)) {
        fail(`node ${n.id} says ${user} is ${n.hub.isOnline(user) ? "online" : "offline"}`);
      }
      if (holder && n !== holder && n.hub.nodeOf(user) !== holder.id) {
        fail(`node ${n.id} places ${user} on ${n.hub.nodeOf(user)}, not ${holder.id}`);
      }
    }
    // The newest login, when its node lives and it is still attached, holds the user (a newer
    // one on a node that died since may have kicked it: that is no failure).
    const mine = logins.filter((l) => l.user === user);
    const newest = mine.reduce<Login | null>(
      (best, l) => !best || l.at > best.at || (l.at === best.at && l.node > best.node) ? l : best,
      null,
    );
    if (newest && !newest.loggedOut && liveIds.has(newest.node)) {
      if (newest.kicked) fail(`${user}'s newest login (node ${newest.node}) was kicked`);
      if (holder?.hub.sessionOf(user) !== newest.session) {
        fail(`${user}'s newest login (node ${newest.node}) does not hold the user`);
      }
    }
  }
  for (const n of nodes) {
    if (n.hub.peers !== nodes.length - 1) {
      fail(`node ${n.id} counts ${n.hub.peers} peers, not ${nodes.length - 1}`);
    }
  }
  for (const n of nodes) await n.hub.close();
  return {
    seed,
    logins: logins.length,
    kicks,
    nodesKilled,
    delivered: net.delivered,
    lost: net.lost,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seeds: { type: "string", default: "200" },
      from: { type: "string", default: "1" },
      steps: { type: "string", default: "600" },
    },
  });
  const totals: Record<string, number> = {};
  let failed = 0;
  const first = Number(values.from);
  for (let seed = first; seed < first + Number(values.seeds); seed++) {
    try {
      const r = await simulateHub(seed, Number(values.steps));
      for (const [k, v] of Object.entries(r)) if (k !== "seed") totals[k] = (totals[k] ?? 0) + v;
    } catch (e) {
      if (!(e instanceof HubSimFailure)) throw e;
      console.error(e.message);
      failed++;
    }
  }
  console.log(JSON.stringify({ seeds: Number(values.seeds), failed, ...totals }));
  Deno.exit(failed > 0 ? 1 : 0);
}
