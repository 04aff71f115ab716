/**
 * The hub of a cluster node: this node's sessions (a LocalHub) plus a directory of the users
 * online on the other nodes, kept by presence events and checked by heartbeats, and routes to
 * them over NATS (bus.ts). No consensus of its own: each user's newest login wins everywhere,
 * by its login time and then its node id, whatever order the events arrive in.
 *
 * The directory is the union of the other nodes' rosters: a user may have an entry for several
 * nodes at once (an older session whose node has not heard of the newer login yet), and is
 * where its newest entry says. When that entry goes, the user is where the next one says: a
 * node that missed a newer login and kept its older session still serves the user.
 *
 * Invariant (asserted): a user has an entry for node N exactly when N's roster here lists it.
 * tests/sim/hub_sim.ts drives several hubs over a lossy, reordering network, seeded.
 */

import type { Clock, TimerHandle } from "../../clock/clock.ts";
import { invariant } from "../../invariant/invariant.ts";
import { MsgType } from "../../protocol/messages.ts";
import type { Value } from "../../protocol/value.ts";
import type { ChatMessage, InboxItem, NamedUser } from "../../store/types.ts";
import { passBody } from "../delivery.ts";
import { type Hub, type HubMetrics, LocalHub } from "../hub.ts";
import type { Logger } from "../log.ts";
import type { Session } from "../session.ts";
import { type EndHeader, envelope, openEnvelope, Subjects } from "./bus.ts";
import type { HubBus } from "./hub_bus.ts";

/** What the hub asks of the server when another node acts on this node's sessions. */
export interface ClusterEvents {
  /** The user logged in on another node, later: end this session as a takeover does. */
  takenOver(session: Session, family: string | null): void;
  /** End a session: its credentials changed on another node. */
  end(session: Session, reason: string): void;
  /**
   * A user of another node went offline: logged out there (whose friends that node told), or
   * with the whole node (whose friends on this node only this node can tell).
   */
  wentOffline(user: NamedUser, nodeGone: boolean): void;
  /**
   * News may have been lost (a NATS reconnect, a gap in a peer's versions, a peer back after it
   * was given up): check this node's sessions against the store and end those whose credentials
   * changed meanwhile, as the lost end would have. `tokens` false: the periodic check, which
   * reads only the user records (a new password, a deleted account). Rejects when the store
   * could not be read: the hub tries again at its next beat. `signal` aborts when a newer
   * pass supersedes this one (a NATS reconnect): stop reading then.
   */
  recheck?(tokens: boolean, signal: AbortSignal): Promise<void>;
}

export interface ClusterHubOptions {
  /** NATS (hub_bus.ts natsBus), or the simulation's network. */
  bus: HubBus;
  /** Names the subjects, as the store's prefix names its buckets. */
  prefix: string;
  clock: Clock;
  log: Logger;
  metrics: HubMetrics;
  /** How often this node says it is alive. */
  beatMs?: number;
  /** A node not heard from for this long is gone, and its users offline. */
  nodeTimeoutMs?: number;
  /**
   * How often the sessions' user records are read again in any case (events.recheck(false)):
   * the bound for an end that was lost without a trace (`parley admin`'s, which has no version).
   */
  recheckMs?: number;
}

interface Remote {
  name: string;
  /** When that login happened (wall ms): the newer login of a user wins. */
  at: number;
}

interface NodeState {
  lastHeard: number;
  /** Its presence version as last applied here; -1 until its roster was read. */
  v: number;
  /**
   * The highest of its versions applied here, gaps or not: a roster older than that misses
   * what those events said (#askRoster).
   */
  newest: number;
  users: Set<string>;
  asking: boolean;
  /**
   * While its version is unknown after a loss (v -1): the version a recheck was asked for when
   * the loss showed (it covers every end up to that one); null when none (a node new to this
   * one). The roster's version then tells whether another end may have been lost meanwhile.
   */
  covered: number | null;
  /** The versions above `covered` heard since: events not lost. */
  heard: Set<number>;
}

interface Presence {
  op: "on" | "off";
  node: string;
  v: number;
  user: string;
  name: string;
  at: number;
  family?: string | null;
}

interface Beat {
  node: string;
  v: number;
}

interface Roster {
  v: number;
  /** [user, name, login time, token family]: the family as in Presence (a takeover names it). */
  users: [string, string, number, (string | null)?][];
}

/**
 * How long after this node queued something for a user of another node (or of none) a newer
 * location of that user still gets a poke from here (see #remoteOn): longer than presence takes
 * to arrive, even after a NATS reconnect's roster reads.
 */
const OFFERED_RECENTLY_MS = 10_000;

/** Roster requests in a row that may come back older than the events applied (#askRoster). */
const ROSTER_ROUNDS = 3;

/**
 * Versions heard while a peer's roster does not come (NodeState.heard) before this node stops
 * counting them and rechecks instead: bounds the set if the roster never comes.
 */
const HEARD_KEPT = 10_000;

/** How long a node given up for silence is remembered (#gone). */
const GONE_KEPT_MS = 24 * 60 * 60 * 1000;

/** The default of ClusterHubOptions.recheckMs. */
export const RECHECK_MS = 60_000;

/** A node id: a random number below 2^21, so that it can also tag transfer ids (2^53). */
export function newNodeId(): string {
  const n = crypto.getRandomValues(new Uint32Array(1))[0] % ((1 << 21) - 1);
  return String(n + 1);
}

/** Whether login `a` (at, node) is older than login `b`. */
function older(aAt: number, aNode: string, bAt: number, bNode: string): boolean {
  return aAt < bAt || (aAt === bAt && aNode < bNode);
}

export class ClusterHub implements Hub {
  readonly distributed = true;
  readonly node: string;
  readonly subjects: Subjects;
  events: ClusterEvents | null = null;
  readonly #local: LocalHub;
  /** user → node → that node's login of the user. */
  readonly #remote = new Map<string, Map<string, Remote>>();
  readonly #nodes = new Map<string, NodeState>();
  readonly #attachedAt = new Map<Session, number>();
  /** Users this node queued for when they were not on it, and when (#remoteOn, #sweep). */
  readonly #offeredAway = new Map<string, number>();
  readonly #subs: (() => void)[] = [];
  readonly #bus: HubBus;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metrics: HubMetrics;
  readonly #beatMs: number;
  readonly #timeoutMs: number;
  readonly #recheckMs: number;
  /** Nodes given up for silence (#sweep), and when: one heard again may have sent ends. */
  readonly #gone = new Map<string, number>();
  /** The recheck running, the one wanted after it, and one that failed (tried at the beat). */
  #rechecking = false;
  #recheckWanted: "users" | "tokens" | null = null;
  #recheckFailed: "users" | "tokens" | null = null;
  #lastRecheck = 0;
  /** Aborts the running pass when a newer one supersedes it (#recheck afresh). */
  #recheckRun: AbortController | null = null;
  #v = 0;
  #timer: TimerHandle | null = null;
  #closed = false;

  constructor(opts: ClusterHubOptions, node = newNodeId()) {
    this.node = node;
    this.subjects = new Subjects(opts.prefix);
    this.#bus = opts.bus;
    this.#clock = opts.clock;
    this.#log = opts.log;
    this.#metrics = opts.metrics;
    this.#local = new LocalHub(opts.metrics);
    this.#beatMs = opts.beatMs ?? 1000;
    this.#timeoutMs = opts.nodeTimeoutMs ?? 5000;
    this.#recheckMs = opts.recheckMs ?? RECHECK_MS;
    this.#lastRecheck = this.#clock.now();
  }

  /** Subscribes, says hello, and keeps beating until close(). */
  async start(): Promise<void> {
    const s = this.subjects;
    this.#on(s.beat, (m) => this.#heardBeat(openEnvelope<Beat>(m).header));
    this.#on(s.presence, (m) => this.#heardPresence(openEnvelope<Presence>(m).header));
    this.#on(s.world, (m) => this.#heardWorld(m));
    this.#on(s.end, (m) => this.#heardEnd(m));
    this.#on(s.node(this.node, "push"), (m) => this.#heardPush(m));
    this.#on(s.node(this.node, "poke"), (m) => this.#heardPoke(m));
    this.#on(s.node(this.node, "roster"), (_, respond) => respond?.(envelope(this.#roster())));
    this.#bus.onReconnect(() => this.#reconnected());
    await this.#bus.flush();
    this.#beat();
    this.#schedule();
  }

  /** Stops beating and listening; the other nodes see this node's users go in nodeTimeoutMs. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#recheckRun?.abort();
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    for (const unsubscribe of this.#subs) unsubscribe();
    if (!this.#bus.closed) await this.#bus.flush().catch(() => {});
  }

  #on(
    subject: string,
    handle: (data: Uint8Array, respond: ((data: Uint8Array) => void) | null) => void,
  ): void {
    this.#subs.push(this.#bus.subscribe(subject, (data, respond) => {
      if (this.#closed) return;
      try {
        handle(data, respond);
      } catch (e) {
        // A malformed message from a peer (or a bug) costs that message, never the node.
        this.#log.error("cluster.bad_message", { subject, error: (e as Error).message });
      }
    }));
  }

  #publish(subject: string, data: Uint8Array): void {
    if (this.#closed || this.#bus.closed) return;
    try {
      this.#bus.publish(subject, data);
    } catch (e) {
      this.#log.warn("cluster.publish_failed", { subject, error: (e as Error).message });
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#beat();
      this.#sweep();
      const failed = this.#recheckFailed;
      this.#recheckFailed = null;
      if (failed) this.#recheck(failed);
      if (this.#clock.now() - this.#lastRecheck >= this.#recheckMs) this.#recheck("users");
      this.#schedule();
    }, this.#beatMs);
  }

  #beat(): void {
    this.#publish(this.subjects.beat, envelope({ node: this.node, v: this.#v } satisfies Beat));
  }

  /** After a NATS reconnect, pokes and presence may have been lost: read everything again. */
  #reconnected(): void {
    if (this.#closed) return;
    this.#log.info("cluster.reconnected", { node: this.node });
    for (const s of this.#local.sessions()) s.pump?.poke();
    for (const [id, state] of this.#nodes) if (!state.asking) void this.#askRoster(id, state);
    this.#beat();
    // Not behind a recheck begun before the link went: its reads may wait out their timeout.
    this.#recheck("tokens", true);
  }

  /**
   * Runs events.recheck, one at a time: a recheck wanted while one runs runs after it (its
   * reads may have begun before the change it is for). Ends are at most once on NATS; this is
   * what makes a lost one still end its sessions.
   */
  #recheck(kind: "users" | "tokens", afresh = false): void {
    if (this.#closed || !this.events?.recheck) return;
    if (this.#recheckWanted !== "tokens") this.#recheckWanted = kind;
    if (this.#rechecking && !afresh) return;
    // Afresh: this run starts now; one still running stops at its next session (the signal),
    // so that reconnects in a row do not pile up passes over every session.
    this.#recheckRun?.abort();
    const run = new AbortController();
    this.#recheckRun = run;
    this.#rechecking = true;
    void (async () => {
      while (this.#recheckWanted !== null && !this.#closed && !run.signal.aborted) {
        const now = this.#recheckWanted;
        this.#recheckWanted = null;
        this.#lastRecheck = this.#clock.now();
        try {
          await this.events?.recheck?.(now === "tokens", run.signal);
        } catch (e) {
          if (this.#recheckFailed !== "tokens") this.#recheckFailed = now;
          this.#log.warn("cluster.recheck_failed", { error: (e as Error).message });
        }
      }
      if (run === this.#recheckRun) {
        this.#rechecking = false;
        this.#recheckRun = null;
      }
    })();
  }

  /**
   * A peer's versions skipped (a presence or an end of it was lost): read its roster, and check
   * this node's sessions in case the lost one was an end.
   */
  #gap(node: string, state: NodeState, lost: boolean): void {
    if (!state.asking) void this.#askRoster(node, state);
    if (lost) this.#recheck("tokens");
  }

  // ---- presence ----

  #state(node: string): NodeState {
    let state = this.#nodes.get(node);
    if (!state) {
      state = {
        lastHeard: this.#clock.now(),
        v: -1,
        newest: -1,
        users: new Set(),
        asking: false,
        covered: null,
        heard: new Set(),
      };
      this.#nodes.set(node, state);
      // Given up for silence and heard again (a partition healed): what it said meanwhile,
      // ends too, never came. A node new to this one (a fresh id) has sent none.
      if (this.#gone.delete(node)) this.#recheck("tokens");
    }
    return state;
  }

  #heardBeat(beat: Beat): void {
    if (beat.node === this.node) return;
    const state = this.#state(beat.node);
    state.lastHeard = this.#clock.now();
    if (state.v === beat.v) return;
    // A version this node has not seen: a lost event (or only its roster not read yet). Unknown
    // from here until a roster comes, so that the next beats do not count the loss again.
    const lost = state.v !== -1;
    if (lost) this.#lostAt(state, beat.v);
    state.v = -1;
    this.#gap(beat.node, state, lost);
  }

  /**
   * A loss of a known sequence showed at version `v`: the recheck #gap asks for now covers the
   * ends up to it. Ends lost after it, while the roster does not come, are told by the roster's
   * version (#rosterCame), since later beats are no new loss.
   */
  #lostAt(state: NodeState, v: number): void {
    state.covered = v;
    state.heard.clear();
  }

  /** A roster of version `v` came: recheck if an end may have been lost since the last one. */
  #rosterCame(state: NodeState, v: number): void {
    if (state.covered !== null && v > state.covered) {
      let heard = 0;
      for (const h of state.heard) if (h <= v) heard++;
      invariant(heard <= v - state.covered, "versions heard past the covered one are distinct");
      if (heard < v - state.covered) this.#recheck("tokens");
    }
    state.covered = null;
    state.heard.clear();
  }

  #heardPresence(p: Presence): void {
    if (p.node === this.node) return;
    const state = this.#state(p.node);
    state.lastHeard = this.#clock.now();
    const gap = this.#heardVersion(state, p.v);
    if (p.op === "on") this.#remoteOn(p, state);
    else this.#remoteOff(p.user, p.node, p.at, false);
    if (gap) this.#gap(p.node, state, gap === "lost");
  }

  /**
   * Applies a peer's event version (presence and ends share one sequence): null, or the gap
   * ("lost": an event of a known sequence went missing).
   * After a gap this node's picture of that node is unknown (-1) until a roster comes: a
   * roster request that fails leaves it so, and the next beat asks again.
   */
  #heardVersion(state: NodeState, v: number): "lost" | "unknown" | null {
    state.lastHeard = this.#clock.now();
    const known = state.v !== -1;
    const gap = state.v !== v - 1;
    state.newest = Math.max(state.newest, v);
    if (known && gap) this.#lostAt(state, v);
    else if (!known && state.covered !== null && v > state.covered) {
      state.heard.add(v);
      // The roster has not come for a long while: recheck now for what was lost until here.
      if (state.heard.size > HEARD_KEPT) {
        this.#recheck("tokens");
        this.#lostAt(state, state.newest);
      }
    }
    state.v = gap ? -1 : v;
    // Unknown: already rechecked when it became so (a gap), or a node new to this one.
    return !gap ? null : known ? "lost" : "unknown";
  }

  #remoteOn(p: Presence, state: NodeState): void {
    const mine = this.#local.sessionOf(p.user);
    if (mine) {
      const at = this.#attachedAt.get(mine) ?? 0;
      // The newer login wins: this node's session goes if it is the older one.
      if (older(at, this.node, p.at, p.node)) {
        this.#detachLocal(p.user, mine);
        this.events?.takenOver(mine, p.family ?? null);
      }
    }
    let entries = this.#remote.get(p.user);
    if (!entries) this.#remote.set(p.user, entries = new Map());
    const known = entries.get(p.node);
    entries.set(p.node, { name: p.name, at: p.at });
    state.users.add(p.user);
    this.#check(p.user);
    // What this node queued for the user lately was poked to where it thought the user was
    // (a node that just died, or nowhere); the user's new pump may have read its inbox before
    // that landed, and with no later message nothing would wake it. Poke it from here.
    const offered = this.#offeredAway.get(p.user);
    const moved = known?.at !== p.at;
    if (moved && offered !== undefined && this.#clock.now() - offered <= OFFERED_RECENTLY_MS) {
      this.#publish(this.subjects.node(p.node, "poke"), envelope({ users: [p.user] }));
    }
  }

  /**
   * Drops a node's entry of a user (only that login's, when `at` is given); the user goes
   * offline if no other entry or session is left. True if the entry was dropped.
   */
  #remoteOff(user: string, node: string, at: number | null, nodeGone: boolean): boolean {
    const entries = this.#remote.get(user);
    const known = entries?.get(node);
    if (!entries || !known || (at !== null && known.at !== at)) return false;
    entries.delete(node);
    this.#nodes.get(node)?.users.delete(user);
    if (entries.size === 0) this.#remote.delete(user);
    this.#check(user);
    if (!this.isOnline(user)) this.events?.wentOffline({ user, name: known.name }, nodeGone);
    return true;
  }

  /** The newest remote login of a user: where it is served, when not on this node. */
  #best(user: string): { node: string; name: string; at: number } | undefined {
    let best: { node: string; name: string; at: number } | undefined;
    for (const [node, r] of this.#remote.get(user) ?? []) {
      if (!best || older(best.at, best.node, r.at, node)) best = { node, ...r };
    }
    return best;
  }

  #roster(): Roster {
    const users: Roster["users"] = [];
    for (const [user, s] of this.#localEntries()) {
      users.push([
        user,
        s.login?.name ?? user,
        this.#attachedAt.get(s) ?? 0,
        s.login?.family ?? null,
      ]);
    }
    return { v: this.#v, users };
  }

  *#localEntries(): Iterable<[string, Session]> {
    for (const s of this.#local.sessions()) if (s.login) yield [s.login.user, s];
  }

  async #askRoster(node: string, state: NodeState): Promise<void> {
    state.asking = true;
    try {
      let roster: Roster;
      for (let round = 1;; round++) {
        const reply = await this.#bus.request(
          this.subjects.node(node, "roster"),
          new Uint8Array(0),
          Math.max(1000, this.#beatMs * 2),
        );
        if (this.#closed || this.#nodes.get(node) !== state) return;
        roster = openEnvelope<Roster>(reply).header;
        if (roster.v >= state.newest) break;
        // Older than events applied meanwhile (they came in the same read from the socket as
        // the answer, and ran first): it would drop a user one of them added, or bring back
        // one that left. Ask again; after a few rounds the next beat does.
        if (round === ROSTER_ROUNDS) return;
      }
      invariant(roster.v >= state.newest, "a roster applied is no older than the events applied");
      const listed = new Set<string>();
      for (const [user, name, at, family] of roster.users) {
        listed.add(user);
        // The family too: a session this login takes over keeps its tokens only when it is the
        // same device's (server.ts replaced); without it, a device that moved node while this
        // node missed its presence would lose its tokens to a roster read.
        this.#remoteOn({ op: "on", node, v: roster.v, user, name, at, family }, state);
      }
      // Users it no longer lists left while this node missed the news (their friends were told).
      for (const user of [...state.users]) {
        if (!listed.has(user)) this.#remoteOff(user, node, null, false);
      }
      this.#rosterCame(state, roster.v);
      state.v = roster.v;
    } catch (e) {
      this.#log.warn("cluster.roster_failed", { node, error: (e as Error).message });
    } finally {
      state.asking = false;
    }
  }

  /** Nodes not heard from for nodeTimeoutMs are gone, and their users with them. */
  #sweep(): void {
    const now = this.#clock.now();
    for (const [user, at] of this.#offeredAway) {
      if (now - at > OFFERED_RECENTLY_MS) this.#offeredAway.delete(user);
    }
    // A node silent this long has restarted with a new id, if at all.
    for (const [node, at] of this.#gone) if (now - at > GONE_KEPT_MS) this.#gone.delete(node);
    for (const [node, state] of [...this.#nodes]) {
      if (now - state.lastHeard <= this.#timeoutMs) continue;
      this.#nodes.delete(node);
      this.#gone.set(node, now);
      this.#log.warn("cluster.node_gone", { node, users: state.users.size });
      for (const user of state.users) {
        const entries = this.#remote.get(user);
        const known = entries?.get(node);
        if (!entries || !known) continue;
        entries.delete(node);
        if (entries.size === 0) this.#remote.delete(user);
        if (!this.isOnline(user)) this.events?.wentOffline({ user, name: known.name }, true);
      }
    }
  }

  // ---- the Hub interface ----

  attach(user: string, session: Session): Session | undefined {
    const previous = this.#local.attach(user, session);
    if (previous) this.#attachedAt.delete(previous);
    // Later than any login of the user this node has heard of, whatever the clocks say: a login
    // made after another is known is the newer one (a Lamport clock per user).
    const at = Math.max(this.#clock.wall(), this.#lastAt + 1, (this.#best(user)?.at ?? 0) + 1);
    this.#lastAt = at;
    this.#attachedAt.set(session, at);
    this.#announce({
      op: "on",
      node: this.node,
      v: 0,
      user,
      name: session.login?.name ?? user,
      at,
      family: session.login?.family ?? null,
    });
    this.#check(user);
    return previous;
  }

  #lastAt = 0;

  detach(user: string, session: Session): boolean {
    const at = this.#attachedAt.get(session);
    if (!this.#local.detach(user, session)) return false;
    this.#attachedAt.delete(session);
    this.#announce({ op: "off", node: this.node, v: 0, user, name: user, at: at ?? 0 });
    return true;
  }

  /** A session another node's newer login replaced: gone here without a word to friends. */
  #detachLocal(user: string, session: Session): void {
    const at = this.#attachedAt.get(session) ?? 0;
    if (!this.#local.detach(user, session)) return;
    this.#attachedAt.delete(session);
    this.#announce({ op: "off", node: this.node, v: 0, user, name: user, at });
  }

  #announce(p: Presence): void {
    p.v = ++this.#v;
    this.#publish(this.subjects.presence, envelope(p));
  }

  #check(user: string): void {
    const entries = this.#remote.get(user);
    invariant(entries === undefined || entries.size > 0, "a user in the directory has an entry");
    for (const [node, state] of this.#nodes) {
      invariant(
        state.users.has(user) === (entries?.has(node) ?? false),
        "a user has an entry for a node exactly when that node's roster lists it",
      );
    }
  }

  sessionOf(user: string): Session | undefined {
    return this.#local.sessionOf(user);
  }

  isOnline(user: string): boolean {
    return this.#local.isOnline(user) || this.#remote.has(user);
  }

  /** When this node's `session` logged in (wall ms), which orders it against other logins. */
  loginTime(session: Session): number | undefined {
    return this.#attachedAt.get(session);
  }

  /** The node a user is online on, if it is another. */
  nodeOf(user: string): string | undefined {
    return this.#local.isOnline(user) ? undefined : this.#best(user)?.node;
  }

  push(user: string, type: number, body: Value): void {
    const mine = this.#local.sessionOf(user);
    if (mine) return mine.push(type, body);
    const remote = this.#best(user);
    if (remote) {
      this.#publish(this.subjects.node(remote.node, "push"), envelope({ u: user, t: type }, body));
    }
  }

  #heardPush(m: Uint8Array): void {
    const { header, body } = openEnvelope<{ u: string; t: number }>(m);
    if (body !== undefined) this.#local.sessionOf(header.u)?.push(header.t, body);
  }

  *online(): Iterable<NamedUser> {
    yield* this.#local.online();
    for (const user of this.#remote.keys()) {
      if (!this.#local.isOnline(user)) yield { user, name: this.#best(user)!.name };
    }
  }

  /** Users online on every node together. */
  get clusterOnline(): number {
    let remoteOnly = 0;
    for (const user of this.#remote.keys()) if (!this.#local.isOnline(user)) remoteOnly++;
    return this.#local.onlineCount + remoteOnly;
  }

  /** The other nodes heard from within nodeTimeoutMs. */
  get peers(): number {
    return this.#nodes.size;
  }

  broadcast(message: ChatMessage, except: Session): void {
    this.#local.broadcast(message, except);
    this.#publish(
      this.subjects.world,
      envelope({ node: this.node, kind: message.kind }, passBody(message, 0)),
    );
  }

  #heardWorld(m: Uint8Array): void {
    const { header, body } = openEnvelope<{ node: string; kind: "text" | "image" }>(m);
    if (header.node === this.node || body === undefined) return;
    const counted = { world: true, kind: header.kind } as ChatMessage;
    for (const [, s] of this.#localEntries()) {
      s.push(MsgType.PASS, body);
      this.#metrics.messageOut(counted);
    }
  }

  endElsewhere(user: string, reason: string, family?: string): void {
    // In the presence sequence: a node that misses it sees the gap and rechecks its sessions.
    const end: EndHeader = { node: this.node, user, reason, family, v: ++this.#v };
    this.#publish(this.subjects.end, envelope(end));
  }

  #heardEnd(m: Uint8Array): void {
    const { header } = openEnvelope<EndHeader>(m);
    if (header.node === this.node) return;
    // `parley admin`'s ends have no version (nor a node to ask); the periodic recheck bounds them.
    if (header.v !== undefined) {
      const state = this.#state(header.node);
      const gap = this.#heardVersion(state, header.v);
      if (gap) this.#gap(header.node, state, gap === "lost");
    }
    if (!this.events) return;
    const main = this.#local.sessionOf(header.user);
    if (main && (!header.family || main.login?.family === header.family)) {
      this.events.end(main, header.reason);
    }
    if (header.family) return;
    for (const s of this.#local.oneShotsOf(header.user)) this.events.end(s, header.reason);
  }

  readonly pumps = (user: string): boolean => this.#local.pumps(user);

  /**
   * Pokes rather than offers: items queued by several nodes reach the store in an order only
   * the store knows, so each pump reads its inbox back (delivery.ts, poke).
   */
  readonly offer = (queued: readonly InboxItem[]): void => {
    let remote: Map<string, string[]> | null = null;
    for (const item of queued) {
      const pump = this.#local.sessionOf(item.user)?.pump;
      if (pump) {
        pump.poke();
        continue;
      }
      this.#offeredAway.set(item.user, this.#clock.now());
      const node = this.#best(item.user)?.node;
      if (!node) continue;
      remote ??= new Map();
      let users = remote.get(node);
      if (!users) remote.set(node, users = []);
      users.push(item.user);
    }
    if (!remote) return;
    for (const [node, users] of remote) {
      this.#publish(this.subjects.node(node, "poke"), envelope({ users }));
    }
  };

  #heardPoke(m: Uint8Array): void {
    const { header } = openEnvelope<{ users: string[] }>(m);
    for (const user of header.users) this.#local.sessionOf(user)?.pump?.poke();
  }

  get onlineCount(): number {
    return this.#local.onlineCount;
  }

  sessions(): Iterable<Session> {
    return this.#local.sessions();
  }

  addOneShot(user: string, session: Session): void {
    this.#local.addOneShot(user, session);
  }

  removeOneShot(user: string, session: Session): void {
    this.#local.removeOneShot(user, session);
  }

  oneShotsOf(user: string): Iterable<Session> {
    return this.#local.oneShotsOf(user);
  }

  /** Every session logged in on this node, one-shots too (a recheck reads them all). */
  attachedSessions(): Session[] {
    return [...this.#local.sessions(), ...this.#local.allOneShots()];
  }
}
