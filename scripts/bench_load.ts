/**
 * Load generator for scripts/bench.ts, run as a separate process so the benchmark's clients do not
 * share a CPU-bound event loop with the server or with each other.
 *
 *   deno run -A scripts/bench_load.ts '<json params>'   (or '@file.json')
 *
 * Protocol with the parent: after setup (connect and log in, not timed) it prints one JSON line
 * `{"ready": true}`; it then waits for the line `go` on stdin, runs the timed phase and prints one
 * JSON line with its results. The `idle` role then holds its connections until `stop` or EOF.
 */

import { ParleyClient, type Target } from "../src/client/client.ts";
import { BenchClient, withTimeout } from "./bench_client.ts";
import { chooseAesGcm } from "../src/crypto/aes_gcm.ts";
import { MsgType } from "../src/protocol/messages.ts";
import type { Value } from "../src/protocol/value.ts";

export interface SendPlan {
  from: string;
  to: Target;
  /** Messages to send (count mode), or the upper bound in rate mode. */
  count: number;
  /** Messages per second for this sender; absent: as fast as the window allows. */
  rate?: number;
  /** Rate mode: delay of this sender's first message, so that senders are spread evenly. */
  offsetMs?: number;
}

export interface LoadParams {
  role: "chat" | "offline_recv" | "idle" | "resume" | "password";
  host: string;
  port: number;
  password: string;
  /** Users this process logs in (chat, idle, offline_recv, resume, password). */
  users: string[];
  /** chat: what each local sender sends. */
  sends?: SendPlan[];
  /** Max SEND requests awaiting SENT per sender. */
  window?: number;
  /** chat/offline_recv: PASS pushes this process expects in total. */
  expect?: number;
  /** chat: record every latency (ms) in the result. */
  latencies?: boolean;
  /**
   * chat with latencies: messages sent in this first part of the run (ms after "go") warm the
   * server and the load up; their latencies are reported apart, in `warmupLat`.
   */
  warmupMs?: number;
  /**
   * chat: messages each sender sends its partner before "ready", untimed, at the same window: a
   * fresh load process runs its first second at about half speed while the JIT compiles its own
   * hot paths, and that is not the server's speed.
   */
  primeMessages?: number;
  /** chat: how many of those primed messages arrive in this process. */
  primeExpect?: number;
  /** resume/password: how long to run; chat: hard deadline. */
  durationMs?: number;
  /** Connections opened at once during setup. */
  setupConcurrency?: number;
  /**
   * chat: the port of each user's node, for a cluster whose nodes listen on several ports
   * (`port` for a user not named here).
   */
  ports?: Record<string, number>;
  /**
   * chat: senders start no new message this long after "go" (their `count` is then an upper
   * bound), and the run ends once every message they sent to this process's users has arrived:
   * a run of bounded length on a server of unknown speed. Needs both ends of each pair here.
   */
  sendForMs?: number;
}

const PAD = "x".repeat(100);
/** Builds a ~100-byte text carrying its send time (ms since the epoch, sub-ms precision). */
export function stampedText(seq: number): string {
  const head = `t=${nowMs().toFixed(3)} n=${seq} `;
  return head + PAD.slice(0, Math.max(1, 100 - head.length));
}

/** Wall-clock ms with sub-ms precision, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function sentAt(text: string): number | null {
  const m = /^t=(\d+\.\d+) /.exec(text);
  return m ? Number(m[1]) : null;
}

function emit(obj: Record<string, unknown>): void {
  console.log(JSON.stringify(obj));
}

/** Runs `fn` over `items` with at most `n` at once. */
async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(workers);
}

const lines = (async function* () {
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let at;
    while ((at = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, at).trim();
      buf = buf.slice(at + 1);
    }
  }
})();

async function waitFor(word: string): Promise<void> {
  while (true) {
    const { value, done } = await lines.next();
    if (done || value === word) return;
  }
}

async function connect(p: LoadParams): Promise<ParleyClient> {
  return await ParleyClient.connect({ host: p.host, port: p.port, knownHosts: null });
}

async function loginAll(p: LoadParams): Promise<Map<string, ParleyClient>> {
  const clients = new Map<string, ParleyClient>();
  await pool(p.users, p.setupConcurrency ?? 50, async (u) => {
    const c = await connect(p);
    await c.login(u, p.password);
    clients.set(u, c);
  });
  return clients;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Logs every user in on a lean client (bench_client.ts), at most `setupConcurrency` at once.
 * `onPass` hears what arrives from the login on (a queued message may come at once).
 */
async function loginAllLean(
  p: LoadParams,
  onPass: (body: { [key: string]: Value }) => void = () => {},
): Promise<Map<string, BenchClient>> {
  const clients = new Map<string, BenchClient>();
  await pool(p.users, p.setupConcurrency ?? 50, async (u) => {
    const c = await BenchClient.connect(p.host, p.ports?.[u] ?? p.port);
    c.onPass = onPass;
    await c.login(u, p.password);
    clients.set(u, c);
  });
  return clients;
}

const PRIME_TIMEOUT_MS = 60_000;
/** The text of a primed message; a timed one starts with "t=". */
const PRIME_TEXT = "prime";

/**
 * Counts the primed messages that reach this process's users, from their login on: another
 * process's sender may start before these users are all logged in.
 */
class PrimeArrivals {
  #arrived = 0;
  #done!: () => void;
  readonly all = new Promise<void>((resolve) => this.#done = resolve);
  constructor(private expected: number) {
    this.#check();
  }

  /** A PASS for one of this process's users; only primed messages count. */
  readonly arrived = (body: { [key: string]: Value }): void => {
    if (body.data !== PRIME_TEXT) return;
    this.#arrived++;
    this.#check();
  };

  /** One copy will never come (its message failed). */
  lost(): void {
    this.expected--;
    this.#check();
  }

  #check(): void {
    if (this.#arrived >= this.expected) this.#done();
  }
}

/**
 * Each sender sends `each` messages to its target, at most `window` unanswered, and waits until
 * the copies for this process's users have all arrived (see primeMessages). Their text does not
 * start with "t=", so a straggler is never counted by the run that follows.
 */
async function prime(
  clients: Map<string, BenchClient>,
  sends: SendPlan[],
  each: number,
  arrivals: PrimeArrivals,
  window: number,
): Promise<void> {
  await Promise.all(sends.map((plan) =>
    new Promise<void>((done) => {
      const c = clients.get(plan.from)!;
      let inflight = 0;
      let next = 0;
      const pump = () => {
        while (next < each && inflight < window) {
          inflight++;
          next++;
          c.send(plan.to, PRIME_TEXT);
        }
        if (inflight === 0) done();
      };
      c.onSent = (ok) => {
        inflight--;
        // A private message that failed never arrives (a group's or the world's may in part).
        if (!ok && "user" in plan.to) arrivals.lost();
        pump();
      };
      pump();
    })
  ));
  await withTimeout(arrivals.all, "Priming", PRIME_TIMEOUT_MS);
}

async function runChat(p: LoadParams): Promise<void> {
  const arrivals = new PrimeArrivals(p.primeExpect ?? 0);
  const clients = await loginAllLean(p, arrivals.arrived);
  const window = p.window ?? 100;
  if (p.primeMessages) {
    await prime(clients, p.sends ?? [], p.primeMessages, arrivals, window);
  }
  // With sendForMs, known only once the senders stop: what they sent.
  let expect = p.sendForMs === undefined ? p.expect ?? 0 : Infinity;
  const deadline = p.durationMs ?? 120_000;
  // Set at "go". The counting starts before: another load process may hear "go" first, and its
  // senders' first messages may reach this process's users before this one hears it (they count
  // in the first half second).
  let tGo = Infinity;
  let received = 0;
  let firstRecv = 0;
  let lastRecv = 0;
  const lat: number[] = [];
  const warmupLat: number[] = [];
  // Receipts per half second from "go": shows the JIT's and the heap's warm-up.
  const timeline: number[] = [];
  let measureFrom = Infinity;
  // The send times of the measured messages that arrived: the rate the senders achieved.
  let measuredSentFirst = Infinity;
  let measuredSentLast = -Infinity;
  // Each local user's first and last timed arrival: the per-pair spread (see pairSpread).
  const timedArrivals = new Map<string, { first: number; last: number }>();
  let allReceived!: () => void;
  const gotAll = new Promise<void>((r) => allReceived = r);
  if (received >= expect) allReceived();
  for (const [user, c] of clients) {
    c.onPass = (body) => {
      const t = nowMs();
      if (typeof body.data !== "string" || !body.data.startsWith("t=")) return;
      if (p.latencies) {
        const at = sentAt(body.data);
        if (at !== null) {
          if (at < measureFrom) warmupLat.push(Math.round((t - at) * 100) / 100);
          else {
            lat.push(Math.round((t - at) * 100) / 100);
            if (at < measuredSentFirst) measuredSentFirst = at;
            if (at > measuredSentLast) measuredSentLast = at;
          }
        }
      }
      const mine = timedArrivals.get(user);
      if (mine) mine.last = t;
      else timedArrivals.set(user, { first: t, last: t });
      if (received === 0) firstRecv = t;
      lastRecv = t;
      const slot = Math.max(0, Math.floor((t - tGo) / 500));
      while (timeline.length <= slot) timeline.push(0);
      timeline[slot]++;
      if (++received >= expect) allReceived();
    };
  }
  emit({ ready: true });
  await waitFor("go");
  tGo = nowMs();
  measureFrom = tGo + (p.warmupMs ?? 0);
  let sent = 0;
  let failed = 0;
  // Copies of group messages the server did not queue (the member's queue was full): they never
  // arrive, so a run that expects them ends in a timeout, and says why.
  let skipped = 0;
  // Rate mode: how late measured messages left against their schedule (the load's own delay).
  let lateMax = 0;
  let lateOver5ms = 0;
  let lateCounted = 0;
  // A client has one onSent: one plan per sender.
  const from = new Set((p.sends ?? []).map((plan) => plan.from));
  if (from.size !== (p.sends ?? []).length) throw new Error("Each sender may have one plan");
  // Rate-mode senders waiting for their next message's time share one 1 ms ticker: a timer per
  // sender and message cost the load process 3-4 % of a core at 12,000 msg/s.
  const parked = new Set<() => void>();
  let ticker: ReturnType<typeof setInterval> | null = null;
  const park = (resume: () => void) => {
    parked.add(resume);
    ticker ??= setInterval(() => {
      const due = [...parked];
      parked.clear();
      for (const f of due) f();
      if (parked.size === 0 && ticker !== null) {
        clearInterval(ticker);
        ticker = null;
      }
    }, 1);
  };
  // At "go" each sender sends its first message, and its window's rest only once every
  // sender's first message has been sealed and handed to its socket: this process stands for
  // many independent clients, and one sender's window sealed before another's first message
  // would make that pair's first arrival late in the load process, not in the server.
  const fill: (() => void)[] = [];
  const senders = (p.sends ?? []).map((plan) =>
    new Promise<void>((done) => {
      const c = clients.get(plan.from)!;
      let inflight = 0;
      let next = 0;
      let paused = false;
      const start = nowMs();
      /**
       * Sends what the window (or `upTo`) and, in rate mode, the clock allow; runs again on each
       * answer.
       */
      const pump = (upTo = window) => {
        while (next < plan.count && inflight < Math.min(window, upTo)) {
          if (p.sendForMs !== undefined && nowMs() - tGo >= p.sendForMs) break;
          if (plan.rate) {
            const due = start + (plan.offsetMs ?? 0) + (next * 1000) / plan.rate;
            if (due - start > deadline) break;
            const wait = due - nowMs();
            if (wait > 1) {
              if (!paused) {
                paused = true;
                park(resume);
              }
              return;
            }
          }
          if (plan.rate) {
            const due = start + (plan.offsetMs ?? 0) + (next * 1000) / plan.rate;
            if (due >= measureFrom) {
              const late = nowMs() - due;
              lateCounted++;
              if (late > lateMax) lateMax = late;
              if (late > 5) lateOver5ms++;
            }
          }
          inflight++;
          c.send(plan.to, stampedText(next++));
        }
        if (inflight === 0) done();
      };
      const resume = () => {
        paused = false;
        pump();
      };
      c.onSent = (ok, notQueued) => {
        if (ok) sent++;
        else failed++;
        skipped += notQueued;
        inflight--;
        if (!paused) pump();
      };
      if (plan.rate) pump();
      else {
        pump(1);
        fill.push(() => pump());
      }
    })
  );
  // When every sender's first message was sealed and handed to its socket (the channels seal in
  // a setImmediate queued before this one): what the load itself adds to the first arrivals.
  let issuedMs = 0;
  // Then each sender's window in a turn of its own: sealed all in one turn, 250 windows kept this
  // process from reading its recipients' first messages for hundreds of milliseconds, a delay no
  // set of independent clients would have.
  let filled = 0;
  const fillNext = () => {
    fill[filled++]?.();
    if (filled < fill.length) setImmediate(fillNext);
  };
  setImmediate(() => {
    issuedMs = Math.round((nowMs() - tGo) * 10) / 10;
    fillNext();
  });
  if (p.sendForMs !== undefined) {
    void Promise.all(senders).then(() => {
      expect = sent;
      if (received >= expect) allReceived();
    });
  }
  const timer = sleep(deadline).then(() => "timeout");
  const outcome = await Promise.race([
    Promise.all([gotAll, ...senders]).then(() => "ok"),
    timer,
  ]);
  const tEnd = nowMs();
  emit({
    done: true,
    outcome,
    tGo,
    tEnd,
    firstRecv,
    lastRecv,
    received,
    sent,
    failed,
    skipped,
    timeline,
    issuedMs,
    pairs: pairSpread(p.sends ?? [], new Set(clients.keys()), timedArrivals, tGo),
    ...(p.latencies
      ? {
        lat,
        warmupLat,
        measuredSentFirst,
        measuredSentLast,
        lateMaxMs: Math.round(lateMax * 100) / 100,
        lateOver5ms,
        lateCounted,
      }
      : {}),
  });
  for (const c of clients.values()) c.close();
}

/** Per pair, ms from "go" to its first and its last timed arrival (null: none arrived). */
export interface PairSpread {
  firstMs: (number | null)[];
  lastMs: (number | null)[];
}

/**
 * The spread over this process's pairs: each plan sending to one user whose client is here
 * (`local`) is a pair, timed from this process's "go" (its senders start then).
 */
export function pairSpread(
  sends: SendPlan[],
  local: Set<string>,
  arrivals: Map<string, { first: number; last: number }>,
  tGo: number,
): PairSpread {
  const out: PairSpread = { firstMs: [], lastMs: [] };
  const ms = (t: number | undefined) => t === undefined ? null : Math.round((t - tGo) * 10) / 10;
  for (const plan of sends) {
    if (!("user" in plan.to) || !local.has(plan.to.user)) continue;
    const a = arrivals.get(plan.to.user);
    out.firstMs.push(ms(a?.first));
    out.lastMs.push(ms(a?.last));
  }
  return out;
}

async function runOfflineRecv(p: LoadParams): Promise<void> {
  const c = await connect(p);
  const expect = p.expect ?? 0;
  emit({ ready: true });
  await waitFor("go");
  const tGo = nowMs();
  let received = 0;
  const login = c.login(p.users[0], p.password);
  const deadline = Date.now() + (p.durationMs ?? 120_000);
  const it = c.events();
  // Each PASS is acknowledged by the client library (one cumulative ACK per tick).
  while (received < expect && Date.now() < deadline) {
    const next = await Promise.race([it.next(), sleep(deadline - Date.now()).then(() => null)]);
    if (!next || next.done) break;
    if (next.value.type === MsgType.PASS) received++;
  }
  await login;
  const tEnd = nowMs();
  await sleep(50); // let the last ACK leave before closing
  emit({ done: true, tGo, tEnd, received, outcome: received >= expect ? "ok" : "timeout" });
  c.close();
}

async function runIdle(p: LoadParams): Promise<void> {
  const clients = await loginAll(p);
  emit({ ready: true, connections: clients.size });
  await waitFor("stop");
  for (const c of clients.values()) c.close();
  emit({ done: true });
}

async function runLogins(p: LoadParams, mode: "resume" | "password"): Promise<void> {
  const tokens: Uint8Array[] = [];
  if (mode === "resume") {
    for (const [u, c] of await loginAll(p)) {
      tokens.push(c.token!);
      void u;
      c.close();
    }
  }
  emit({ ready: true });
  await waitFor("go");
  const tGo = nowMs();
  const stopAt = tGo + (p.durationMs ?? 3000);
  let logins = 0;
  let failed = 0;
  let lastErr = "";
  await Promise.all(p.users.map(async (u, i) => {
    while (nowMs() < stopAt) {
      let c: ParleyClient | null = null;
      try {
        c = await connect(p);
        if (mode === "resume") {
          await c.resume(tokens[i]);
          // RESUME rotates the token: the next login presents the new one.
          tokens[i] = c.token!;
        } else await c.login(u, p.password);
        logins++;
      } catch (e) {
        failed++;
        lastErr = e instanceof Error ? e.message : String(e);
        await sleep(10);
      } finally {
        c?.close();
      }
    }
  }));
  const tEnd = nowMs();
  emit({ done: true, tGo, tEnd, logins, failed, lastErr });
}

if (import.meta.main) {
  // The parameters as JSON, or "@file" naming a JSON file (read and then removed).
  const arg = Deno.args[0];
  const p = JSON.parse(
    arg.startsWith("@") ? Deno.readTextFileSync(arg.slice(1)) : arg,
  ) as LoadParams;
  if (arg.startsWith("@")) Deno.removeSync(arg.slice(1));
  // The load seals with OpenSSL as the server does, unless the bench was told otherwise.
  chooseAesGcm(Deno.env.get("BENCH_NATIVE_AES") !== "0");
  try {
    switch (p.role) {
      case "chat":
        await runChat(p);
        break;
      case "offline_recv":
        await runOfflineRecv(p);
        break;
      case "idle":
        await runIdle(p);
        break;
      case "resume":
      case "password":
        await runLogins(p, p.role);
        break;
    }
  } catch (e) {
    emit({ error: e instanceof Error ? e.message : String(e) });
    Deno.exit(1);
  }
  // Stay alive (for the parent's final CPU reading) until it says stop or closes stdin.
  await waitFor("stop");
  Deno.exit(0);
}
