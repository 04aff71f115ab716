/**
 * A seeded, deterministic simulation of durable delivery, in the spirit of TigerBeetle's VOPR and
 * FoundationDB's simulation: the real inbox store, group committer and inbox pump run over a
 * simulated KV (tests/sim/sim_kv.ts) and a ManualClock, driven by a seeded PRNG through thousands
 * of random steps: private and group messages of every size (shared blobs included), ACKs of
 * some or all of what a session got, disconnects, reconnects, kicks, failed commits, commits and
 * reads held while ACKs and other writes race them, crashes that drop everything not committed,
 * clean and unclean restarts, and time moving so that deferred rows commit.
 *
 * The server's flow is modelled on src/server/handlers/chat.ts: enqueue with deferral for online
 * recipients, offer the queued items to their pumps, answer SENT once `durable` completes (an
 * error if it failed), replies in request order. The sender retries a message whose SENT did not
 * come with the SAME id; the recipient drops duplicates by (sender, id) as src/client/seen.ts does
 * and counts what it shows.
 *
 * Checked after every step: every committed ref names a committed row and every row naming a
 * blob has its ref; every referenced blob is whole; every blob is referenced or marked pending
 * (a crash then sweeps it); no stored value holds a view of a larger buffer; each session gets
 * seqs in rising order; every PASS is a message that was sent, to that recipient, with its
 * content. Whenever nothing is in flight (no commit or read held, no timer set), the store's counts
 * (stats per user, storedBytes per sender and in all) equal a recount of the committed rows.
 *
 * At the end (drain: faults off, everyone online, time advanced, everything acknowledged, then a
 * clean restart): every message answered SENT was shown exactly once to each recipient its SENT
 * named, and no message more than once to anyone; and nothing is left in the store.
 *
 * Order: for two messages A and B from one sender to one recipient, if the sender got SENT for A
 * before it first sent B, the recipient shows A before B. Nothing is promised for a B sent while
 * A was unanswered: A may fail and be retried after B (the client retries with the same id).
 */

import { setImmediate } from "node:timers";
import { ManualClock } from "../../src/clock/clock.ts";
import { SeenMessages } from "../../src/client/seen.ts";
import type { ChatMessage, InboxLimits } from "../../src/store/types.ts";
import {
  type InboxItem,
  itemUser,
  makePump,
  openSimStore,
  type Pass,
  SimSession,
  type SimStore,
  type StoredRow,
  storedRow,
} from "./adapter.ts";
import { asDenoKv, type CommitOutcome, SimDisk, SimKv } from "./sim_kv.ts";

export interface SimOptions {
  steps: number;
  /** Chance that a commit the simulation completes fails instead. */
  faultRate?: number;
  /** Chance per step of a crash (an unclean restart). */
  crashRate?: number;
}

export interface SimResult {
  seed: number;
  steps: number;
  messages: number;
  attempts: number;
  sent: number;
  refused: number;
  deliveries: number;
  duplicates: number;
  shown: number;
  commits: number;
  failedCommits: number;
  crashes: number;
  restarts: number;
  kicks: number;
  idleChecks: number;
  /** Errors logged by a stopped pump whose read failed (see connect()). */
}

export class SimFailure extends Error {
  constructor(readonly seed: number, readonly step: number, what: string, trace: string[]) {
    super(
      `Simulation failed: seed ${seed}, step ${step}: ${what}\n` +
        `Replay: deno task sim --seed ${seed}\nLast steps:\n  ${trace.join("\n  ")}`,
    );
    this.name = "SimFailure";
  }
}

const USERS = ["ann", "ben", "cat", "dan"];
/** Group id → members; a group message goes to every member but its sender. */
const GROUPS = new Map<number, string[]>([[1, ["ann", "ben", "cat", "dan"]], [2, [
  "ann",
  "ben",
  "cat",
]]]);
const LIMITS: InboxLimits = {
  maxMessages: 60,
  maxBytes: 1024 * 1024,
  senderSharePercent: 70,
  maxSenderBytes: 3 * 1024 * 1024,
  maxTotalBytes: 6 * 1024 * 1024,
};
/** What a failed commit looks like once it reaches a log line (the committer's or the KV's). */
const COMMIT_FAILURE = /^(Simulated KV commit failure|KV commit failed)$/;
/** Lines of trace a failure prints (PARLEY_SIM_TRACE=N for more). */
const TRACE_LINES = Number(Deno.env.get("PARLEY_SIM_TRACE") ?? 40);

/** sfc32 seeded through splitmix32: fast, and the same seed gives the same run. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  const mix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix(), b = mix(), c = mix(), d = mix();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 0x1_0000_0000;
  };
}

interface Msg {
  key: string;
  from: string;
  id: Uint8Array;
  to?: string;
  group?: number;
  recipients: string[];
  text?: string;
  image?: Uint8Array;
  /** Event tick of the first attempt, and of the SENT (null until it comes). */
  firstSend: number;
  sentAt: number | null;
  /** Recipients the SENT named (its recipients less those skipped). */
  expected: string[] | null;
  refused: boolean;
  attempts: number;
  /** The connection whose reply this message waits for, or null (then it is to be retried). */
  waiting: Conn | null;
}

type Outcome = { ok: true; skipped: readonly string[] } | { ok: false; final: boolean };

interface Reply {
  msg: Msg;
  outcome: Outcome | null;
}

interface Conn {
  user: string;
  n: number;
  open: boolean;
  session: SimSession;
  pump: ReturnType<typeof makePump>;
  /** Seqs received and not yet acknowledged, rising. */
  unacked: number[];
  lastSeq: number;
  /** Replies in request order: one leaves once it and every one before it is settled. */
  replies: Reply[];
}

interface Client {
  name: string;
  conn: Conn | null;
  /** The client's own duplicate filter. */
  seen: SeenMessages;
  /** Message key → tick at which it was first shown. */
  shown: Map<string, number>;
  /** Message key → times shown: more than one is a duplicate the filter let through. */
  shows: Map<string, number>;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const keyOf = (from: string, id: Uint8Array) => `${from.toLowerCase()}/${hex(id)}`;

class Sim {
  readonly rand: () => number;
  readonly disk = new SimDisk();
  kv: SimKv | null = null;
  clock = new ManualClock();
  store: SimStore | null = null;
  readonly clients: Client[] = USERS.map((name) => ({
    name,
    conn: null,
    seen: new SeenMessages(),
    shown: new Map(),
    shows: new Map(),
  }));
  readonly msgs = new Map<string, Msg>();
  tick = 0;
  step = 0;
  connSerial = 0;
  faultRate: number;
  crashRate: number;
  faults = true;
  /** Chance that a read waits for the simulation, so that commits and ACKs land during it. */
  readHoldRate = 0.25;
  readonly trace: string[] = [];
  readonly stats = {
    attempts: 0,
    deliveries: 0,
    duplicates: 0,
    crashes: 0,
    restarts: 0,
    kicks: 0,
    idleChecks: 0,
  };
  /** Where the slab of wire-decoded ids is cut from (as src/protocol/value.ts does). */
  #slab = new Uint8Array(1024);
  #slabAt = 0;
  readonly #errors: string[] = [];

  constructor(readonly seed: number, opts: SimOptions) {
    this.rand = prng(seed);
    this.faultRate = opts.faultRate ?? 0.04;
    this.crashRate = opts.crashRate ?? 0.004;
    this.disk.holdReads = () => this.chance(this.readHoldRate);
  }

  log(line: string): void {
    this.trace.push(`#${this.step} ${line}`);
    if (this.trace.length > TRACE_LINES) this.trace.shift();
  }

  fail(what: string): never {
    throw new SimFailure(this.seed, this.step, what, this.trace);
  }

  check(ok: boolean, what: string): asserts ok {
    if (!ok) this.fail(what);
  }

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  chance(p: number): boolean {
    return this.rand() < p;
  }

  /**
   * Lets every chain of promises run to its end: setImmediate comes after all microtasks, and
   * nothing the store does waits on a real timer or real I/O. (A MessageChannel message can
   * come between microtasks in Deno; setTimeout(0) is clamped to milliseconds once nested.)
   */
  async quiesce(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.#errors.length > 0) this.fail(this.#errors.join("; "));
  }

  // --- The process ---

  /** Opens the store over the disk; commits complete (with faults) until it is open. */
  async start(): Promise<boolean> {
    // Small pages now and then, so that commits land between the pages of one list.
    const kv = new SimKv(this.disk, this.pick([2, 5, 100]));
    const clock = new ManualClock(this.clock.now(), this.clock.wall() - this.clock.now());
    const opened: { store?: SimStore; error?: Error } = {};
    openSimStore(asDenoKv(kv), clock).then((s) => opened.store = s, (e) => opened.error = e);
    await this.runCommits(() => opened.store !== undefined || opened.error !== undefined);
    const result = opened.store ?? opened.error!;
    if (result instanceof Error) {
      kv.fence();
      this.log(`start failed: ${(result as Error).message}`);
      return false;
    }
    this.kv = kv;
    this.clock = clock;
    this.store = result;
    this.stats.restarts++;
    this.log("started");
    return true;
  }

  /** Completes held commits until `done()` (or none is held and nothing else will come). */
  async runCommits(done: () => boolean): Promise<void> {
    await this.quiesce();
    for (let i = 0; !done(); i++) {
      if (i > 100_000) this.fail("a store operation never finished");
      if (!this.release()) this.fail("a store operation waits for nothing");
      await this.quiesce();
    }
  }

  /**
   * Lets one held thing go on: a read or a commit (chosen at random), or else time runs to the
   * next timer. False when nothing waits.
   */
  release(): boolean {
    const reads = this.disk.heldReads;
    const commits = this.disk.held;
    if (reads > 0 && (commits === 0 || this.chance(0.5))) this.disk.releaseRead();
    else if (commits > 0) this.completeCommit();
    else if (this.clock.pending > 0) this.clock.advance(this.clock.nextDue()! - this.clock.now());
    else return false;
    return true;
  }

  completeCommit(): void {
    const outcome: CommitOutcome = this.faults && this.chance(this.faultRate)
      ? (this.chance(0.5) ? "throw" : "not_ok")
      : "apply";
    if (outcome !== "apply") this.log(`commit fails (${outcome})`);
    this.disk.complete(outcome);
  }

  /** Everything the process holds is lost; held commits reached the disk or did not. */
  crash(): void {
    const kept = this.disk.crash(() => this.chance(0.5));
    this.kv!.fence();
    this.log(`CRASH (${kept} held commits reached the disk)`);
    for (const c of this.clients) if (c.conn) this.drop(c.conn);
    this.kv = null;
    this.store = null;
    this.stats.crashes++;
  }

  /** A clean shutdown: sessions end, what is queued is committed (or fails), then a start. */
  async restart(): Promise<void> {
    this.log("clean restart");
    for (const c of this.clients) if (c.conn) this.drop(c.conn);
    const store = this.store!;
    let closed = false;
    store.close().then(() => closed = true, (e) => this.fail(`close failed: ${e}`));
    await this.runCommits(() => closed);
    this.kv!.fence();
    this.kv = null;
    this.store = null;
    await this.start();
  }

  // --- Sessions ---

  connect(c: Client): void {
    const n = ++this.connSerial;
    const session = new SimSession((pass) => this.onPass(conn, pass), this.clock);
    const windowBytes = this.pick([4096, 32 * 1024, 256 * 1024, 1024 * 1024]);
    const pump = makePump(this.store!.inbox, session, c.name, windowBytes, {
      error: (event, fields) => {
        // A removal whose commit failed is logged and tried again (or left for a later session).
        if (event === "inbox.remove_failed" && COMMIT_FAILURE.test(String(fields.error))) return;
        // A read that met a shared blob deleted under it (another session's last ACK of it) is
        // tried again a moment later without that row; the drain's checks catch one that stays.
        if (
          event === "inbox.read_failed" && /is incomplete in the store/.test(String(fields.error))
        ) {
          return;
        }
        // (A stopped pump's background read may fail when a kicked session's last ACK deleted
        // the shared blob under it; the pump drops that result without a word: no entry here.)
        this.#errors.push(`${event} ${JSON.stringify(fields)}`);
      },
    });
    const conn: Conn = {
      user: c.name,
      n,
      open: true,
      session,
      pump,
      unacked: [],
      lastSeq: 0,
      replies: [],
    };
    if (c.conn) {
      this.stats.kicks++;
      this.log(`${c.name} kicked: conn ${c.conn.n} → ${n} (window ${windowBytes})`);
      this.drop(c.conn);
    } else {
      this.log(`${c.name} connects: conn ${n} (window ${windowBytes})`);
    }
    c.conn = conn;
    pump.start();
  }

  /** The connection ends: its pump stops, the replies it waited for are lost. */
  drop(conn: Conn): void {
    conn.open = false;
    conn.session.closed = true;
    conn.pump.stop();
    for (const r of conn.replies) if (r.msg.waiting === conn) r.msg.waiting = null;
    conn.replies = [];
    const c = this.client(conn.user);
    if (c.conn === conn) c.conn = null;
  }

  client(name: string): Client {
    return this.clients.find((c) => c.name === name)!;
  }

  online(): Client[] {
    return this.clients.filter((c) => c.conn !== null);
  }

  // --- Sending (src/server/handlers/chat.ts: deliver and sent) ---

  newMessage(from: Client): Msg {
    const id = new Uint8Array(16);
    for (let i = 0; i < 16; i++) id[i] = this.int(256);
    let to: string | undefined;
    let group: number | undefined;
    let recipients: string[];
    if (this.chance(0.6)) {
      to = this.pick(USERS.filter((u) => u !== from.name));
      recipients = [to];
    } else {
      const groups = [...GROUPS].filter(([, m]) => m.includes(from.name));
      const [gid, members] = this.pick(groups);
      group = gid;
      recipients = members.filter((u) => u !== from.name);
    }
    const msg: Msg = {
      key: keyOf(from.name, id),
      from: from.name,
      id,
      to,
      group,
      recipients,
      firstSend: ++this.tick,
      sentAt: null,
      expected: null,
      refused: false,
      attempts: 0,
      waiting: null,
    };
    const r = this.rand();
    if (r < 0.45) msg.text = this.text(1 + this.int(60));
    else if (r < 0.6) msg.text = this.text(340 + this.int(400)); // a shared blob in a group
    else if (r < 0.85) msg.image = this.bytes(1 + this.int(3000));
    else msg.image = this.bytes(40_000 + this.int(160_000)); // chunked when over 48 KiB
    this.msgs.set(msg.key, msg);
    return msg;
  }

  text(n: number): string {
    const alphabet = "abcdefghijklmnopqrstuvwxyz ééß→😀";
    let s = "";
    while (s.length < n) s += this.pick([...alphabet]);
    return s;
  }

  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    const x = this.int(256);
    for (let i = 0; i < n; i++) b[i] = (x + i * 31 + (i >> 7)) & 255;
    return b;
  }

  /** The id as the server's decoder hands it over: a view of a shared slab. */
  wireId(id: Uint8Array): Uint8Array {
    if (this.#slabAt + id.length > this.#slab.length) {
      this.#slab = new Uint8Array(1024);
      this.#slabAt = 0;
    }
    const view = this.#slab.subarray(this.#slabAt, this.#slabAt + id.length);
    this.#slabAt += id.length;
    view.set(id);
    return view;
  }

  /** One SEND of `msg` on the sender's connection. */
  attempt(msg: Msg, conn: Conn): void {
    this.check(
      msg.waiting === null && msg.sentAt === null && !msg.refused,
      "resend of a settled message",
    );
    msg.waiting = conn;
    msg.attempts++;
    this.stats.attempts++;
    const message: ChatMessage = {
      id: this.wireId(msg.id),
      time: new Date(this.clock.wall()),
      from: msg.from.toUpperCase()[0] + msg.from.slice(1),
      kind: msg.image ? "image" : "text",
    };
    if (msg.text !== undefined) message.text = msg.text;
    if (msg.image) message.image = msg.image.slice();
    if (msg.to !== undefined) message.to = msg.to;
    if (msg.group !== undefined) message.group = { id: msg.group, name: `g${msg.group}` };
    const reply: Reply = { msg, outcome: null };
    conn.replies.push(reply);
    this.log(
      `${msg.from} sends ${msg.key.slice(0, 12)} (attempt ${msg.attempts}) to ${
        msg.to ?? `group ${msg.group}`
      }: ${msg.text !== undefined ? `text ${msg.text.length}` : `image ${msg.image!.length}`}`,
    );
    const inbox = this.store!.inbox;
    let enqueued;
    try {
      enqueued = inbox.enqueue(
        msg.recipients,
        message,
        LIMITS,
        (u) => this.client(u).conn !== null,
        // Offered as the seqs are taken, in seq order, to the recipients online now (chat.ts).
        (queued) => {
          for (const item of queued) this.offer(item);
        },
      );
    } catch (e) {
      this.fail(`enqueue threw: ${(e as Error).stack}`);
    }
    const placed = (e: Awaited<typeof enqueued>) => {
      if (e.refused) return this.settleReply(conn, reply, { ok: false, final: true });
      if (msg.to !== undefined && (e.full.length > 0 || e.capped.length > 0)) {
        return this.settleReply(conn, reply, { ok: false, final: true });
      }
      const skipped = [...e.full, ...e.capped];
      e.durable.listen({
        settled: (error) =>
          this.settleReply(
            conn,
            reply,
            error ? { ok: false, final: false } : { ok: true, skipped },
          ),
      });
    };
    if (enqueued instanceof Promise) {
      enqueued.then(placed, () => this.settleReply(conn, reply, { ok: false, final: false }));
    } else {
      placed(enqueued);
    }
  }

  offer(item: InboxItem): void {
    this.client(itemUser(item)).conn?.pump.offer(item);
  }

  settleReply(conn: Conn, reply: Reply, outcome: Outcome): void {
    reply.outcome = outcome;
    // Answers keep their requests' order (src/server/dispatch.ts, DurableReply).
    while (conn.open && conn.replies.length > 0 && conn.replies[0].outcome !== null) {
      const { msg, outcome } = conn.replies.shift()!;
      if (msg.waiting !== conn) continue;
      msg.waiting = null;
      if (outcome!.ok) {
        msg.sentAt = ++this.tick;
        const skipped = outcome!.skipped;
        msg.expected = msg.recipients.filter((u) => !skipped.includes(u));
        this.log(
          `${msg.from} gets SENT ${msg.key.slice(0, 12)}${
            skipped.length ? ` skipped ${skipped}` : ""
          }`,
        );
      } else if (outcome!.final) {
        msg.refused = true;
        this.log(`${msg.from} gets a refusal for ${msg.key.slice(0, 12)}`);
      } else {
        this.log(`${msg.from} gets an error for ${msg.key.slice(0, 12)}: will retry`);
      }
    }
  }

  /** Messages of `from` with no answer and no request out: the client sends them again. */
  unanswered(from: string): Msg[] {
    const out: Msg[] = [];
    for (const m of this.msgs.values()) {
      if (m.from === from && m.sentAt === null && !m.refused && m.waiting === null) out.push(m);
    }
    return out;
  }

  // --- Receiving (src/client/seen.ts) ---

  onPass(conn: Conn, pass: Pass): void {
    if (!conn.open) return;
    const c = this.client(conn.user);
    this.check(pass.seq > conn.lastSeq, `${c.name} got seq ${pass.seq} after ${conn.lastSeq}`);
    conn.lastSeq = pass.seq;
    this.log(
      `${c.name} gets seq ${pass.seq} on conn ${conn.n}: ${keyOf(pass.from, pass.id).slice(0, 12)}`,
    );
    conn.unacked.push(pass.seq);
    this.stats.deliveries++;
    const key = keyOf(pass.from, pass.id);
    const msg = this.msgs.get(key);
    this.check(msg !== undefined, `${c.name} got a message never sent: ${key}`);
    this.check(msg.recipients.includes(c.name), `${c.name} got ${key}, which was not for them`);
    this.check(pass.group === msg.group, `${c.name} got ${key} with the wrong group`);
    const same = msg.text !== undefined
      ? pass.data === msg.text
      : pass.data instanceof Uint8Array && sameBytes(pass.data, msg.image!);
    this.check(same, `${c.name} got ${key} with other content than was sent`);
    if (!c.seen.first(pass.from, pass.id)) {
      this.stats.duplicates++;
      return;
    }
    c.shows.set(key, (c.shows.get(key) ?? 0) + 1);
    if (!c.shown.has(key)) c.shown.set(key, ++this.tick);
  }

  ack(conn: Conn, all: boolean): void {
    const upTo = all ? conn.unacked[conn.unacked.length - 1] : this.pick(conn.unacked);
    this.log(`${conn.user} acks ${upTo} on conn ${conn.n}`);
    conn.unacked = conn.unacked.filter((s) => s > upTo);
    conn.pump.ack(upTo);
  }

  // --- Checks ---

  /** The committed rows hang together: what a crash right now would leave. */
  checkDisk(): void {
    this.check(this.disk.views.length === 0, `a stored value holds a view: ${this.disk.views[0]}`);
    const named = new Set<string>();
    const refs = new Set<string>();
    const chunks = new Map<string, { n: number; bytes: number }>();
    const pending = new Set<string>();
    const wanted = new Map<string, { chunks: number; size: number }>();
    for (const r of this.rows()) {
      if (r.kind === "inbox") {
        if (r.blob) {
          named.add(`${r.blob.id}/${r.user}/${r.seq}`);
          wanted.set(r.blob.id, r.blob);
        }
      } else if (r.kind === "ref") {
        refs.add(`${r.id}/${r.user}/${r.seq}`);
      } else if (r.kind === "blob") {
        const c = chunks.get(r.id) ?? { n: 0, bytes: 0 };
        c.n++;
        c.bytes += r.bytes;
        chunks.set(r.id, c);
      } else {
        pending.add(r.id);
      }
    }
    for (const n of named) this.check(refs.has(n), `a row naming a blob has no ref: ${n}`);
    for (const r of refs) this.check(named.has(r), `a ref names no row: ${r}`);
    for (const [id, b] of wanted) {
      const c = chunks.get(id);
      this.check(c?.n === b.chunks && c.bytes === b.size, `a referenced blob is not whole: ${id}`);
    }
    for (const id of chunks.keys()) {
      this.check(wanted.has(id) || pending.has(id), `a blob nobody refers to or sweeps: ${id}`);
    }
  }

  /** The committed rows, read as the store lays them out; any other row fails the run. */
  rows(): StoredRow[] {
    return this.disk.rows.map((r) =>
      storedRow(r.key, r.value) ?? this.fail(`an unexpected row ${r.key.join("/")}`)
    );
  }

  /** Nothing is in flight: the store's counts equal a recount of the committed rows. */
  async checkCounts(): Promise<void> {
    const perUser = new Map<string, { count: number; bytes: number }>();
    const perSender = new Map<string, number>();
    let total = 0;
    const rows = this.rows();
    for (const r of rows) {
      if (r.kind !== "inbox") continue;
      const u = perUser.get(r.user) ?? { count: 0, bytes: 0 };
      u.count++;
      u.bytes += r.size;
      perUser.set(r.user, u);
      perSender.set(r.sender, (perSender.get(r.sender) ?? 0) + r.cost);
      total += r.cost;
    }
    const inbox = this.store!.inbox;
    for (const user of USERS) {
      const got = await inbox.stats(user);
      const want = perUser.get(user) ?? { count: 0, bytes: 0 };
      this.check(
        got.count === want.count && got.bytes === want.bytes,
        `${user}'s counts are ${JSON.stringify(got)}, the rows ${JSON.stringify(want)} (${
          rows.filter((r) => r.kind === "inbox" && r.user === user)
            .map((r) => r.kind === "inbox" && `seq ${r.seq}: ${r.size} bytes`)
            .join(", ")
        })`,
      );
      const bytes = inbox.storedBytes(user);
      const wantBytes = perSender.get(user) ?? 0;
      this.check(bytes === wantBytes, `${user}'s stored bytes are ${bytes}, the rows ${wantBytes}`);
    }
    this.check(inbox.storedBytes() === total, `stored bytes ${inbox.storedBytes()}, rows ${total}`);
    this.stats.idleChecks++;
  }

  idle(): boolean {
    return this.store !== null && this.disk.held === 0 && this.disk.heldReads === 0 &&
      this.clock.pending === 0;
  }

  /** The end state: every message answered SENT shown once to each recipient, in order. */
  checkEnd(): void {
    for (const m of this.msgs.values()) {
      this.check(m.sentAt !== null || m.refused, `${m.key} was never answered`);
      if (m.sentAt === null) continue;
      for (const u of m.expected!) {
        const shows = this.client(u).shows.get(m.key) ?? 0;
        this.check(shows === 1, `${u} was shown ${m.key}, answered SENT, ${shows} times`);
      }
    }
    // Per sender and recipient: SENT(A) before B was first sent ⇒ A shown before B.
    for (const c of this.clients) {
      for (const sender of USERS) {
        const mine = [...this.msgs.values()].filter((m) =>
          m.from === sender && m.sentAt !== null && c.shown.has(m.key)
        ).sort((a, b) => a.sentAt! - b.sentAt!);
        // Sorted by SENT, A must be shown before every B first sent after A's SENT: the latest
        // show among the A's answered before B's first send must precede B's show.
        const byFirst = [...mine].sort((a, b) => a.firstSend - b.firstSend);
        let i = 0;
        let latest: Msg | null = null;
        for (const b of byFirst) {
          while (i < mine.length && mine[i].sentAt! < b.firstSend) {
            const a = mine[i++];
            if (latest === null || c.shown.get(a.key)! > c.shown.get(latest.key)!) latest = a;
          }
          if (latest !== null) {
            this.check(
              c.shown.get(latest.key)! < c.shown.get(b.key)!,
              `${c.name} showed ${b.key} (sent after SENT of ${latest.key}) before it`,
            );
          }
        }
      }
    }
    for (const c of this.clients) {
      for (const [key, n] of c.shows) this.check(n === 1, `${c.name} was shown ${key} ${n} times`);
    }
    for (const r of this.disk.rows) this.fail(`left in the store: ${r.key.join("/")}`);
  }
}

/** Runs one seed; throws SimFailure with the seed, the step and a trace when a check fails. */
export async function simulate(seed: number, opts: SimOptions): Promise<SimResult> {
  const sim = new Sim(seed, opts);
  // Blob ids come from crypto.getRandomValues: seeded too, so that a seed replays exactly.
  const realRandom = crypto.getRandomValues;
  crypto.getRandomValues = (<T extends ArrayBufferView | null>(a: T): T => {
    if (a) {
      const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(sim.rand() * 256);
    }
    return a;
  }) as typeof crypto.getRandomValues;
  try {
    while (!(await sim.start()));
    for (sim.step = 1; sim.step <= opts.steps; sim.step++) {
      await randomStep(sim);
      sim.checkDisk();
      if (sim.idle()) await sim.checkCounts();
    }
    sim.step = opts.steps + 1;
    await drain(sim);
  } catch (e) {
    if (e instanceof SimFailure) throw e;
    throw new SimFailure(seed, sim.step, (e as Error).stack ?? String(e), sim.trace);
  } finally {
    crypto.getRandomValues = realRandom;
  }
  const msgs = [...sim.msgs.values()];
  return {
    seed,
    steps: opts.steps,
    messages: msgs.length,
    attempts: sim.stats.attempts,
    sent: msgs.filter((m) => m.sentAt !== null).length,
    refused: msgs.filter((m) => m.refused).length,
    deliveries: sim.stats.deliveries,
    duplicates: sim.stats.duplicates,
    shown: sim.clients.reduce((n, c) => n + c.shown.size, 0),
    commits: sim.disk.applied,
    failedCommits: sim.disk.failed,
    crashes: sim.stats.crashes,
    restarts: sim.stats.restarts,
    kicks: sim.stats.kicks,
    idleChecks: sim.stats.idleChecks,
  };
}

async function randomStep(sim: Sim): Promise<void> {
  if (sim.store === null) {
    // Down after a crash (or a failed start): come back up, or let time pass.
    if (sim.chance(0.7)) await sim.start();
    return;
  }
  const r = sim.rand() * 100;
  const online = sim.online();
  const offline = sim.clients.filter((c) => c.conn === null);
  if (r < 40 && online.length > 0) {
    const from = sim.pick(online);
    sim.attempt(sim.newMessage(from), from.conn!);
  } else if (r < 62) {
    const acking = online.filter((c) => c.conn!.unacked.length > 0);
    if (acking.length > 0) sim.ack(sim.pick(acking).conn!, sim.chance(0.7));
  } else if (r < 72) {
    const ms = sim.pick([1, 5, 20, 50, 99, 100, 101, 150, 400]);
    sim.log(`time +${ms} ms`);
    sim.clock.advance(ms);
  } else if (r < 77) {
    const senders = online.filter((c) => sim.unanswered(c.name).length > 0);
    if (senders.length > 0) {
      const c = sim.pick(senders);
      for (const m of sim.unanswered(c.name)) sim.attempt(m, c.conn!);
    }
  } else if (r < 81 && online.length > 0) {
    const c = sim.pick(online);
    sim.log(`${c.name} disconnects`);
    sim.drop(c.conn!);
  } else if (r < 89 && offline.length > 0) {
    const c = sim.pick(offline);
    sim.connect(c);
    if (sim.chance(0.7)) { for (const m of sim.unanswered(c.name)) sim.attempt(m, c.conn!); }
  } else if (r < 91 && online.length > 0) {
    sim.connect(sim.pick(online)); // a new session replaces the old one
  } else if (r < 91 + sim.crashRate * 100) {
    sim.crash();
    return;
  } else if (r < 91 + sim.crashRate * 200) {
    await sim.restart();
    return;
  }
  await sim.quiesce();
  // Held commits and reads go on now and then: until then ACKs, reads and writes race them.
  if (sim.chance(0.6)) {
    for (let n = 1 + sim.int(3); n > 0 && sim.disk.held + sim.disk.heldReads > 0; n--) {
      sim.release();
      await sim.quiesce();
    }
  }
}

/** Faults off, everyone online and acknowledging, until every message is answered and delivered. */
async function drain(sim: Sim): Promise<void> {
  sim.faults = false;
  sim.readHoldRate = 0;
  sim.log("drain");
  if (sim.store === null) await sim.start();
  for (const c of sim.clients) sim.connect(c);
  for (let round = 0;; round++) {
    if (round > 200) {
      const waiting = [...sim.msgs.values()].filter((m) => m.sentAt === null && !m.refused);
      const rows = sim.disk.rows.map((r) => r.key.join("/"));
      const counts = await Promise.all(USERS.map((u) => sim.store!.inbox.stats(u)));
      sim.fail(
        `the drain did not end: ${waiting.length} unanswered, counts ${
          JSON.stringify(counts)
        }, held ${sim.disk.held}, timers ${sim.clock.pending}, rows ${rows.slice(0, 20)}`,
      );
    }
    for (const c of sim.clients) for (const m of sim.unanswered(c.name)) sim.attempt(m, c.conn!);
    await sim.quiesce();
    while (sim.release()) await sim.quiesce();
    for (const c of sim.clients) if (c.conn!.unacked.length > 0) sim.ack(c.conn!, true);
    await sim.quiesce();
    sim.checkDisk();
    if (sim.idle()) await sim.checkCounts();
    const waiting = [...sim.msgs.values()].some((m) => m.sentAt === null && !m.refused);
    const queued = (await sim.store!.inbox.queued()).count;
    // Everyone got a new session above, so no reconnect is needed from here on: items whose
    // removal failed earlier are read back then, and anything else left is a liveness bug.
    if (!waiting && queued === 0 && sim.idle()) break;
  }
  // A clean restart sweeps markers of blobs whose clean-up commit failed.
  await sim.restart();
  sim.checkDisk();
  await sim.checkCounts();
  sim.checkEnd();
}
