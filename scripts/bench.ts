/**
 * Benchmarks a Parley server on the loopback interface.
 *
 *   deno run -A scripts/bench.ts [--scenario NAME ...] [--addr HOST:PORT] [--quick] [--rate N]
 *                                [--repeat N] [--compare FILE]
 *
 * Scenarios: relay, latency, fanout, world, offline, idle, logins. Without --addr it starts a
 * server child (fresh data dir, raised limits, scrypt N=1024 so the untimed setup is quick) and
 * measures its CPU and memory from /proc. The clients run in separate load processes
 * (scripts/bench_load.ts). Every scenario prints JSON lines (one per measurement); a table follows
 * at the end.
 *
 * Environment knobs, for profiling: BENCH_SCALE (multiplies relay and fan-out messages),
 * BENCH_RELAY_PAIRS (the relay runs' pair counts, comma-separated; 50,500 by default; --quick runs
 * 10), BENCH_INSPECT_PORT (an inspector on the server), BENCH_LOAD_INSPECT_PORT (on the first load
 * process), BENCH_V8 (V8 flags for the server), BENCH_SERVER_LOG (a copy of the server's output),
 * BENCH_LATENCY_PROCESSES (load processes of the latency scenario, 1 by default) and
 * BENCH_LAT_DUMP (a file for every measured latency sample), BENCH_GO_GAP_MS (see GO_GAP_MS).
 * BENCH_NATIVE_AES=0 makes the server
 * and the load processes seal frames with node:crypto instead of OpenSSL (crypto.nativeAes), for
 * comparisons.
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { ParleyClient, type Target } from "../src/client/client.ts";
import { REGISTER_QUEUE } from "../src/crypto/password.ts";
import { V8_FLAGS } from "../src/server/v8_flags.ts";
import type { LoadParams, SendPlan } from "./bench_load.ts";
import {
  compareRuns,
  FLOOR_PCT,
  type Line,
  printComparison,
  readBenchFile,
} from "./bench_compare.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LOAD = fileURLToPath(new URL("./bench_load.ts", import.meta.url));
const PASSWORD = "bench-password-1";
const TICKS = 100; // clock ticks per second in /proc/<pid>/stat
const ALL = ["relay", "latency", "fanout", "world", "offline", "idle", "logins"];

const { values } = parseOptions();

function parseOptions() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        scenario: { type: "string", multiple: true },
        addr: { type: "string" },
        quick: { type: "boolean", default: false },
        rate: { type: "string" },
        repeat: { type: "string" },
        compare: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}; see deno task bench --help`);
    Deno.exit(2);
  }
}
if (values.help) {
  console.log(`Usage: deno task bench [--scenario NAME ...] [--addr HOST:PORT] [--quick] [--rate N]
                         [--repeat N]

Scenarios: ${ALL.join(", ")} (all of them when none is named).
  --addr HOST:PORT  measure a running server instead of starting one (no server CPU or memory then)
  --quick           small, fast runs, to check that the bench works
  --rate N          messages per second for the latency scenario (default: 20 % of the relay result)
  --repeat N        N runs (an odd number), each on a fresh server, then each measurement's median
                    line (not with --addr)
  --compare FILE    then compare with a saved output of this bench (its stdout): one JSON line
                    and a table on stderr name what got slower beyond the noise (the spread of
                    the repeats, at least ${FLOOR_PCT} %); the exit code does not change`);
  Deno.exit(0);
}
const QUICK = values.quick!;
const REPEAT = Number(values.repeat ?? 1);
// Odd, so that the median of every measurement is the figure of one run.
if (!Number.isInteger(REPEAT) || REPEAT < 1 || REPEAT % 2 === 0) {
  console.error(`--repeat takes an odd whole number (1, 3, 5 …), not "${values.repeat}"`);
  Deno.exit(2);
}
if (REPEAT > 1 && values.addr) {
  // The runs would share one server, and what each left behind (users, backlog) would skew
  // the next: not the independent runs a median is taken over.
  console.error("--repeat starts a fresh server for each run; it cannot be used with --addr");
  Deno.exit(2);
}
/** The saved run for --compare, read before this run so that a bad file costs no bench time. */
let SAVED: Line[] | null = null;
if (values.compare !== undefined) {
  try {
    SAVED = await readBenchFile(values.compare);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
const SCENARIOS = values.scenario?.length ? values.scenario : ALL;
for (const s of SCENARIOS) {
  if (!ALL.includes(s)) {
    console.error(`Unknown scenario "${s}"; choose from ${ALL.join(", ")}`);
    Deno.exit(2);
  }
}
const RUN = Math.random().toString(36).slice(2, 7);
/** BENCH_SCALE multiplies the messages of relay and fan-out: longer runs, for profiling. */
const SCALE = Number(Deno.env.get("BENCH_SCALE") ?? 1);
if (!(SCALE > 0)) {
  console.error(`BENCH_SCALE must be a positive number, not "${Deno.env.get("BENCH_SCALE")}"`);
  Deno.exit(2);
}
/** BENCH_RELAY_PAIRS lists the relay runs' pair counts, to profile one of them alone. */
const RELAY_PAIRS = (Deno.env.get("BENCH_RELAY_PAIRS") ?? "50,500").split(",").map(Number);
if (!RELAY_PAIRS.every((n) => Number.isInteger(n) && n > 0)) {
  console.error(
    `BENCH_RELAY_PAIRS must list positive whole numbers, not "${
      Deno.env.get("BENCH_RELAY_PAIRS")
    }"`,
  );
  Deno.exit(2);
}
/** BENCH_LAT_DUMP names a file for the latency scenario's samples. */
const LAT_DUMP = Deno.env.get("BENCH_LAT_DUMP");

/**
 * BENCH_GO_GAP_MS: a pause between telling each load process "go", for the tests: one process's
 * senders then reach the next process's users before that process has heard "go".
 */
const GO_GAP_MS = Number(Deno.env.get("BENCH_GO_GAP_MS") ?? 0);

// ---------------------------------------------------------------------------------------------
// /proc readings

function cpuTicks(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  } catch {
    return null;
  }
}

function rssKiB(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function pct(t0: number | null, t1: number | null, seconds: number): number | null {
  if (t0 === null || t1 === null || seconds <= 0) return null;
  return round(((t1 - t0) / TICKS) / seconds * 100, 1);
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------------------
// The server

interface Server {
  host: string;
  port: number;
  pid: number | null;
  /** The server's V8 inspector port (loopback), for a forced GC before memory readings. */
  inspectPort: number | null;
  stop(): Promise<void>;
}

/** A free loopback TCP port (closed again, so a child can take it). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Runs a full garbage collection in the server through its inspector, so that an RSS reading
 * counts live memory rather than whatever garbage the last phase left behind. Returns the JS
 * heap in use after it (bytes), or null without an inspector.
 */
async function collectGarbage(srv: Server): Promise<number | null> {
  if (srv.inspectPort === null) return null;
  try {
    const targets = await (await fetch(`http://127.0.0.1:${srv.inspectPort}/json/list`)).json();
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    const replies = new Map<number, (result: Record<string, number>) => void>();
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      replies.get(m.id)?.(m.result);
    };
    const call = (id: number, method: string) =>
      new Promise<Record<string, number>>((resolve) => {
        replies.set(id, resolve);
        ws.send(JSON.stringify({ id, method }));
      });
    await call(1, "HeapProfiler.collectGarbage");
    const usage = await call(2, "Runtime.getHeapUsage");
    ws.close();
    return usage.usedSize;
  } catch {
    return null;
  }
}

/** As in the default config, unless BENCH_NATIVE_AES=0 (read by the load processes too). */
const NATIVE_AES = Deno.env.get("BENCH_NATIVE_AES") === "0" ? "off" : "auto";

function benchConfig(scryptN: number) {
  return {
    crypto: { nativeAes: NATIVE_AES },
    limits: {
      requestRate: 10_000_000,
      requestBurst: 10_000_000,
      maxConnections: 100_000,
      maxConnectionsPerIp: 100_000,
    },
    accounts: {
      scrypt: { N: scryptN, r: 8, p: 1 },
      loginFreeFailures: 1000,
      registerPerIp: 1_000_000,
      registerPerHour: 10_000_000,
    },
    // The fan-out group is made of strangers at once; consent is not what it measures.
    groups: { inviteNeedsConsent: false },
  };
}

let fixedPortUsed = false;
/** The AES-GCM implementation the (first) server said it uses. */
let serverAes = "unknown";

async function startServer(scryptN: number): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "parley-bench-" });
  const config = `${dir}/config.json`;
  await Deno.writeTextFile(config, JSON.stringify(benchConfig(scryptN)));
  // BENCH_INSPECT_PORT fixes the first server's port, so that a profiler can attach to it.
  const fixed = Deno.env.get("BENCH_INSPECT_PORT");
  const inspectPort = fixed && !fixedPortUsed ? Number(fixed) : freePort();
  if (fixed) fixedPortUsed = true;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `--inspect=127.0.0.1:${inspectPort}`,
      // The server's own V8 settings (src/server/v8_flags.ts), then any BENCH_V8 adds.
      `--v8-flags=${[V8_FLAGS, Deno.env.get("BENCH_V8") || []].flat().join(",")}`,
      "main.ts",
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data",
      `${dir}/data`,
      "--config",
      config,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const serverLog = Deno.env.get("BENCH_SERVER_LOG");
  let found: (port: number) => void;
  const port = new Promise<number>((r) => found = r);
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      if (serverLog) await Deno.writeTextFile(serverLog, chunk, { append: true });
      if (text.length < 100_000) {
        text += chunk;
        const m = /server\.listening addr=127\.0\.0\.1:(\d+) .*aes=(\S+)/.exec(text);
        if (m) {
          serverAes = m[2];
          found(Number(m[1]));
        }
      }
    }
  };
  const done = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = await Promise.race([
    port,
    child.status.then(() => -1),
    new Promise<number>((r) => timer = setTimeout(() => r(-2), 20_000)),
  ]);
  clearTimeout(timer);
  if (p < 0) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    throw new Error(`The server did not start:\n${text}`);
  }
  return {
    host: "127.0.0.1",
    port: p,
    pid: child.pid,
    inspectPort,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await done;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function existingServer(addr: string): Server {
  const at = addr.lastIndexOf(":");
  return {
    host: addr.slice(0, at),
    port: Number(addr.slice(at + 1)),
    pid: null,
    inspectPort: null,
    async stop() {},
  };
}

// ---------------------------------------------------------------------------------------------
// Setup helpers (not timed)

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

let batch = 0;
/**
 * Fresh usernames: unique per run and per call, so scenarios never collide, and never look-alikes
 * of each other ("_" would be dropped from the look-alike key: b1_10 and b11_0 would clash).
 */
function names(prefix: string, n: number): string[] {
  const b = batch++;
  return Array.from({ length: n }, (_, i) => `b${RUN}${prefix}${b}x${i}`);
}

async function register(srv: Server, users: string[]): Promise<void> {
  // No more at once than the server lets wait for a registration hash (SERVER_BUSY past that).
  await pool(users, REGISTER_QUEUE, async (u) => {
    const c = await ParleyClient.connect({ host: srv.host, port: srv.port, knownHosts: null });
    try {
      await c.register(u, PASSWORD);
    } finally {
      c.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Load processes

let loadsStarted = 0;

class Load {
  readonly child: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  stderr = "";

  constructor(params: Omit<LoadParams, "host" | "port" | "password">, srv: Server) {
    const full: LoadParams = { ...params, host: srv.host, port: srv.port, password: PASSWORD };
    // Through a file: thousands of user names do not fit in one command-line argument.
    const paramsFile = Deno.makeTempFileSync({ prefix: "parley-load-", suffix: ".json" });
    Deno.writeTextFileSync(paramsFile, JSON.stringify(full));
    // BENCH_LOAD_INSPECT_PORT opens an inspector on the first load process, for profiling it.
    const inspect = Deno.env.get("BENCH_LOAD_INSPECT_PORT");
    const inspectArgs = inspect && loadsStarted++ === 0 ? [`--inspect=127.0.0.1:${inspect}`] : [];
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", ...inspectArgs, LOAD, `@${paramsFile}`],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#lines = (async function* (stream) {
      let buf = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let at;
        while ((at = buf.indexOf("\n")) >= 0) {
          yield buf.slice(0, at);
          buf = buf.slice(at + 1);
        }
      }
    })(this.child.stdout);
    const child = this.child;
    void (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        if (this.stderr.length < 20_000) this.stderr += chunk;
      }
    })();
  }

  get pid(): number {
    return this.child.pid;
  }

  async next(): Promise<Record<string, unknown>> {
    while (true) {
      const r = await this.#lines.next();
      if (r.done) throw new Error(`A load process ended early:\n${this.stderr}`);
      if (!r.value.startsWith("{")) continue;
      const obj = JSON.parse(r.value);
      if (obj.error) throw new Error(`A load process failed: ${obj.error}\n${this.stderr}`);
      return obj;
    }
  }

  async say(word: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(word + "\n"));
  }

  async finish(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const t = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await this.child.status;
    clearTimeout(t);
  }
}

interface Timed {
  results: Record<string, unknown>[];
  seconds: number;
  serverCpu: number | null;
  loadCpu: (number | null)[];
}

/** Starts the loads, waits until all are set up, then times the phase from `go` to all results. */
async function timed(srv: Server, loads: Load[]): Promise<Timed> {
  try {
    for (const l of loads) {
      const r = await l.next();
      if (!r.ready) throw new Error(`Unexpected ${JSON.stringify(r)}`);
    }
    const s0 = cpuTicks(srv.pid);
    const l0 = loads.map((l) => cpuTicks(l.pid));
    const t0 = performance.now();
    if (GO_GAP_MS > 0) {
      for (const l of loads) {
        await l.say("go");
        await new Promise((r) => setTimeout(r, GO_GAP_MS));
      }
    } else {
      await Promise.all(loads.map((l) => l.say("go")));
    }
    const results = await Promise.all(loads.map((l) => l.next()));
    const seconds = (performance.now() - t0) / 1000;
    const s1 = cpuTicks(srv.pid);
    const l1 = loads.map((l) => cpuTicks(l.pid));
    return {
      results,
      seconds,
      serverCpu: pct(s0, s1, seconds),
      loadCpu: l0.map((t, i) => pct(t, l1[i], seconds)),
    };
  } finally {
    await Promise.all(loads.map((l) => l.finish()));
  }
}

/** The CPU columns every timed scenario reports: the server's, and the busiest load process's. */
function cpuFields(t: Timed) {
  return {
    server_cpu_pct: t.serverCpu,
    load_cpu_pct: maxOf(t.loadCpu),
    load_cpu_pct_each: t.loadCpu,
  };
}

function maxOf(xs: (number | null)[]): number | null {
  const ok = xs.filter((x): x is number => x !== null);
  return ok.length ? Math.max(...ok) : null;
}

/** Received count over the window from the first `go` to the last receipt. */
function deliveryRate(t: Timed): { rate: number; received: number; seconds: number } {
  const received = t.results.reduce((a, r) => a + (r.received as number), 0);
  const start = Math.min(...t.results.map((r) => r.tGo as number));
  const end = Math.max(...t.results.map((r) => (r.lastRecv as number) || (r.tEnd as number)));
  const seconds = (end - start) / 1000;
  return { rate: round(received / seconds, 1), received, seconds: round(seconds, 3) };
}

/** Receipts per second over each half second from "go", summed over the load processes. */
function timeline(t: Timed): number[] {
  const sum: number[] = [];
  for (const r of t.results) {
    (r.timeline as number[] ?? []).forEach((n, i) => sum[i] = (sum[i] ?? 0) + 2 * n);
  }
  return Array.from(sum, (n) => n ?? 0);
}

/**
 * The rate after the first second: the JIT compiles the hot paths and the heap grows to its
 * working size during that second, so this is what a server that has been up a while gives.
 * Null when the run was too short to tell.
 */
function warmRate(t: Timed, perSecond: number[]): number | null {
  const start = Math.min(...t.results.map((r) => r.tGo as number));
  const end = Math.max(...t.results.map((r) => r.lastRecv as number));
  const seconds = (end - start) / 1000 - 1;
  if (!(seconds >= 1)) return null;
  const count = perSecond.slice(2).reduce((a, n) => a + n / 2, 0);
  return round(count / seconds, 1);
}

function outcomes(t: Timed): string {
  const o = [...new Set(t.results.map((r) => r.outcome as string))];
  return o.join(",");
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const lines: Line[] = [];

/** Which of the --repeat runs is going on (from 1). */
let run = 1;

function report(line: Line): void {
  if (!values.addr) line.server_aes = serverAes;
  if (REPEAT > 1) line.run = run;
  lines.push(line);
  console.log(JSON.stringify(line));
}

let relayResult: number | null = null;

/** Pairs s_i → r_i split over two loads (both ends of a pair in the same load). */
async function pairsRun(
  srv: Server,
  pairs: number,
  plan: (index: number) => Omit<SendPlan, "from" | "to">,
  opts: {
    latencies?: boolean;
    warmupMs?: number;
    durationMs?: number;
    processes?: number;
    /** Sets the run's users apart from another run with as many pairs. */
    prefix?: string;
    /** Messages per sender before the timed run (see LoadParams.primeMessages). */
    prime?: number;
  },
): Promise<Timed> {
  const senders = names(`${opts.prefix ?? ""}s${pairs}x`, pairs);
  const receivers = names(`${opts.prefix ?? ""}r${pairs}x`, pairs);
  await register(srv, [...senders, ...receivers]);
  const processes = opts.processes ?? 2;
  const loads = [...Array(processes).keys()].map((k) => {
    const idx = [...Array(pairs).keys()].filter((i) => i % processes === k);
    const sends = idx.map((i) => ({
      from: senders[i],
      to: { user: receivers[i] },
      ...plan(i),
    }));
    return new Load({
      role: "chat",
      users: idx.flatMap((i) => [senders[i], receivers[i]]),
      sends,
      window: 100,
      expect: sends.reduce((a, s) => a + s.count, 0),
      latencies: opts.latencies,
      warmupMs: opts.warmupMs,
      primeMessages: opts.prime,
      primeExpect: (opts.prime ?? 0) * idx.length,
      durationMs: opts.durationMs ?? 180_000,
    }, srv);
  });
  return await timed(srv, loads);
}

/**
 * Messages the load processes of a relay run send, untimed, before it: a fresh load process
 * runs its first second at about half speed while its own code is compiled.
 */
const RELAY_PRIME = 20_000;

/** Messages of the relay warm-up: about a second's worth on a fresh server. */
const RELAY_WARMUP_PER_SENDER = 1000;

/** Runs `pairs` pairs of `each` messages per sender and reports the run as `scenario`. */
async function relayRun(
  srv: Server,
  scenario: string,
  pairs: number,
  each: number,
  prefix?: string,
): Promise<number> {
  const prime = scenario === "relay" ? Math.ceil((QUICK ? 200 : RELAY_PRIME) / pairs) : 0;
  const t = await pairsRun(srv, pairs, () => ({ count: each }), { prefix, prime });
  const d = deliveryRate(t);
  const perSecond = timeline(t);
  report({
    scenario,
    pairs,
    messages_per_sender: each,
    window: 100,
    result: d.rate,
    unit: "msg/s",
    ...cpuFields(t),
    received: d.received,
    seconds: d.seconds,
    outcome: outcomes(t),
    ...(scenario === "relay" ? { after_first_second: warmRate(t, perSecond) } : {}),
    primed_per_sender: prime,
    timeline_msg_per_s: perSecond,
  });
  return d.rate;
}

async function relay(srv: Server): Promise<void> {
  // A fresh server relays a third to a half as fast in its first second as later: the JIT
  // compiles the hot paths and the heap grows to its working size. A server in service has long
  // done that, so 50 pairs on users of their own warm it up first; that run is reported apart,
  // as relay_warmup, and is not the relay result.
  await relayRun(srv, "relay_warmup", QUICK ? 10 : 50, QUICK ? 20 : RELAY_WARMUP_PER_SENDER, "w");
  for (const pairs of QUICK ? [10] : RELAY_PAIRS) {
    // 200,000 messages in all: a few seconds at full speed. The line also gives the rate after
    // the first second and the rate of each half second.
    const rate = await relayRun(
      srv,
      "relay",
      pairs,
      QUICK ? 100 : Math.round(200_000 * SCALE / pairs),
    );
    relayResult = relayResult === null ? rate : Math.max(relayResult, rate);
  }
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * One load process: at 20 % load it needs well under a core, and the server and it then fit on
 * two cores. With a second one, three busy processes share two cores and a message can wait a
 * scheduler time slice at each of its three hops, which the p99 then measures.
 */
const LATENCY_PROCESSES = Number(Deno.env.get("BENCH_LATENCY_PROCESSES") ?? 1);

async function latency(srv: Server): Promise<void> {
  const pairs = 50;
  const rate = values.rate
    ? Number(values.rate)
    : relayResult !== null
    ? Math.max(50, Math.round(relayResult * 0.2))
    : 2000;
  const seconds = QUICK ? 2 : 5;
  // The first second is not measured: the server and the load process start cold (JIT, each
  // pair's first message reads its recipient's queue counts from KV), and in runs of this
  // scenario alone that second held most of the samples over 20 ms. The p99 and max with it
  // counted are reported as well.
  const warmup = QUICK ? 0.5 : 1;
  const perSender = rate / pairs;
  const count = Math.max(1, Math.round(perSender * (warmup + seconds)));
  // Senders take turns: together they send at an even rate, not in bursts of one per sender.
  const t = await pairsRun(srv, pairs, (i) => ({
    count,
    rate: perSender,
    offsetMs: (i / pairs) * (1000 / perSender),
  }), {
    latencies: true,
    warmupMs: warmup * 1000,
    durationMs: (warmup + seconds + 30) * 1000,
    processes: LATENCY_PROCESSES,
  });
  // Every measured sample (not the warm-up's), per load process and in order of arrival, to see
  // when the slow ones came.
  if (LAT_DUMP) {
    const file = REPEAT > 1 ? `${LAT_DUMP}.${run}` : LAT_DUMP;
    Deno.writeTextFileSync(file, JSON.stringify(t.results.map((r) => r.lat)));
  }
  const lat = t.results.flatMap((r) => r.lat as number[]).sort((a, b) => a - b);
  const withWarmup = [...lat, ...t.results.flatMap((r) => r.warmupLat as number[])]
    .sort((a, b) => a - b);
  report({
    scenario: "latency",
    pairs,
    rate_per_s: rate,
    rate_source: values.rate ? "--rate" : relayResult !== null ? "20% of relay" : "default",
    seconds,
    warmup_s: warmup,
    result: round(percentile(lat, 0.5), 2),
    unit: "ms p50",
    ...cpuFields(t),
    p50_ms: round(percentile(lat, 0.5), 2),
    p99_ms: round(percentile(lat, 0.99), 2),
    max_ms: round(lat[lat.length - 1] ?? NaN, 2),
    p99_ms_with_warmup: round(percentile(withWarmup, 0.99), 2),
    max_ms_with_warmup: round(withWarmup[withWarmup.length - 1] ?? NaN, 2),
    received: lat.length,
    outcome: outcomes(t),
  });
}

/**
 * One sender sends `n` messages to `to` while every other user in `users` receives them; the
 * users are split over two load processes. Reports deliveries per second.
 */
async function oneToMany(
  srv: Server,
  users: string[],
  to: Target,
  n: number,
  params: Record<string, unknown>,
  /** Messages sent, untimed, before the run (see LoadParams.primeMessages). */
  prime: number,
): Promise<void> {
  const sender = users[0];
  const loads = [0, 1].map((k) => {
    const mine = users.filter((_, i) => i % 2 === k);
    const receivers = mine.filter((u) => u !== sender).length;
    return new Load({
      role: "chat",
      users: mine,
      sends: k === 0 ? [{ from: sender, to, count: n }] : [],
      window: 100,
      expect: receivers * n,
      primeMessages: prime,
      primeExpect: receivers * prime,
      durationMs: 180_000,
    }, srv);
  });
  const t = await timed(srv, loads);
  const d = deliveryRate(t);
  report({
    ...params,
    messages: n,
    primed: prime,
    window: 100,
    result: d.rate,
    unit: "deliveries/s",
    ...cpuFields(t),
    received: d.received,
    seconds: d.seconds,
    outcome: outcomes(t),
  });
}

async function fanout(srv: Server): Promise<void> {
  const members = QUICK ? 20 : 100;
  const users = names("g", members);
  await register(srv, users);
  const c = await ParleyClient.connect({ host: srv.host, port: srv.port, knownHosts: null });
  await c.login(users[0], PASSWORD);
  const group = await c.createGroup("bench", users.slice(1));
  c.close();
  await oneToMany(srv, users, { group: group.group_id }, QUICK ? 50 : 5000 * SCALE, {
    scenario: "fanout",
    members,
  }, QUICK ? 5 : 100);
}

async function world(srv: Server): Promise<void> {
  const online = QUICK ? 100 : 1000;
  const users = names("w", online);
  await register(srv, users);
  // Not primed: a world message reaches only who is online when it is sent, and the two load
  // processes log their users in independently.
  await oneToMany(srv, users, { world: true }, QUICK ? 20 : 100, { scenario: "world", online }, 0);
}

async function offline(srv: Server): Promise<void> {
  const total = QUICK ? 1000 : 10_000;
  const nSenders = 4;
  const target = names("off", 1)[0];
  const senders = names("offs", nSenders);
  await register(srv, [target, ...senders]);
  // Setup: queue the messages while the target is offline.
  const fill = new Load({
    role: "chat",
    users: senders,
    sends: senders.map((s) => ({ from: s, to: { user: target }, count: total / nSenders })),
    window: 100,
    expect: 0,
    durationMs: 180_000,
  }, srv);
  const f = await timed(srv, [fill]);
  const queued = f.results[0].sent as number;
  const recv = new Load({ role: "offline_recv", users: [target], expect: queued }, srv);
  const t = await timed(srv, [recv]);
  const r = t.results[0];
  const seconds = ((r.tEnd as number) - (r.tGo as number)) / 1000;
  report({
    scenario: "offline",
    queued,
    senders: nSenders,
    result: round(seconds, 3),
    unit: "s",
    server_cpu_pct: t.serverCpu,
    load_cpu_pct: maxOf(t.loadCpu),
    received: r.received,
    msgs_per_s: round((r.received as number) / seconds, 1),
    outcome: r.outcome,
  });
}

/** The server's limit on open files, from /proc (null when it cannot be read). */
function openFileLimit(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const m = /Max open files\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/limits`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Files the server needs besides its connections (store, logs, listener, runtime). */
const FD_RESERVE = 200;

async function idle(srv: Server): Promise<void> {
  // 20,000 connections need 20,000 descriptors on top of the server's own; where the limit is
  // lower, the last step holds as many as it allows and says so.
  const fdLimit = openFileLimit(srv.pid);
  const most = fdLimit === null ? 20_000 : Math.min(20_000, fdLimit - FD_RESERVE);
  const sizes = QUICK ? [200] : [1000, 5000, most];
  for (const n of sizes) {
    const users = names(`i${n}x`, n);
    await register(srv, users);
    await new Promise((r) => setTimeout(r, 1000));
    const heapBefore = await collectGarbage(srv);
    const gc = heapBefore !== null;
    const before = rssKiB(srv.pid);
    const loads = [0, 1].map((k) =>
      new Load({
        role: "idle",
        users: users.filter((_, i) => i % 2 === k),
        setupConcurrency: 100,
      }, srv)
    );
    try {
      let held = 0;
      for (const l of loads) held += (await l.next()).connections as number;
      await new Promise((r) => setTimeout(r, 2000));
      const heapAfter = gc ? await collectGarbage(srv) : null;
      const after = rssKiB(srv.pid);
      const cpuIdle0 = cpuTicks(srv.pid);
      await new Promise((r) => setTimeout(r, 2000));
      const cpuIdle = pct(cpuIdle0, cpuTicks(srv.pid), 2);
      const per = before !== null && after !== null ? round((after - before) * 1024 / n, 0) : null;
      report({
        scenario: "idle",
        connections: held,
        result: per,
        unit: "bytes RSS/conn",
        server_cpu_pct: cpuIdle,
        load_cpu_pct: null,
        rss_before_kib: before,
        rss_after_kib: after,
        gc_before_readings: gc,
        // The part of the RSS growth that is JavaScript objects; the rest is native (runtime,
        // allocator, buffers the kernel does not hold).
        js_heap_per_conn: heapBefore !== null && heapAfter !== null
          ? round((heapAfter - heapBefore) / n, 0)
          : null,
        ...(n < 20_000 && n === most ? { capped_by_open_file_limit: fdLimit } : {}),
      });
    } finally {
      await Promise.all(loads.map((l) => l.say("stop").catch(() => {})));
      await Promise.all(loads.map((l) => l.finish()));
    }
  }
}

/**
 * Users each of the two load processes logs in again and again, one login at a time each. With
 * 8 each a fresh server managed about 1,100 logins/s; with 64 each 1,600–2,000 at the same server
 * CPU, as each turn of its event loop then handles several logins.
 */
const LOGIN_WORKERS = 64;

async function logins(srv: Server): Promise<void> {
  const all = names("lg", 2 * LOGIN_WORKERS);
  await register(srv, all);
  // Resume logins: fresh connection, handshake, RESUME, close.
  const workers = LOGIN_WORKERS;
  const duration = QUICK ? 1000 : 3000;
  const loads = [0, 1].map((k) =>
    new Load({
      role: "resume",
      users: all.slice(k * workers, (k + 1) * workers),
      durationMs: duration,
    }, srv)
  );
  const t = await timed(srv, loads);
  const logins = t.results.reduce((a, r) => a + (r.logins as number), 0);
  const failed = t.results.reduce((a, r) => a + (r.failed as number), 0);
  const secs = Math.max(...t.results.map((r) => (r.tEnd as number) - (r.tGo as number))) / 1000;
  report({
    scenario: "logins_resume",
    concurrency: workers * 2,
    result: round(logins / secs, 1),
    unit: "logins/s",
    ...cpuFields(t),
    logins,
    failed,
    seconds: round(secs, 3),
  });

  // Password logins with the default scrypt cost, on a server of their own.
  if (values.addr) return;
  const slow = await startServer(131072);
  try {
    const users = names("pw", 4);
    await register(slow, users);
    const l = new Load({ role: "password", users, durationMs: QUICK ? 1000 : 4000 }, slow);
    const p = await timed(slow, [l]);
    const r = p.results[0];
    const s = ((r.tEnd as number) - (r.tGo as number)) / 1000;
    report({
      scenario: "logins_password",
      scrypt_N: 131072,
      concurrency: users.length,
      result: round((r.logins as number) / s, 2),
      unit: "logins/s",
      server_cpu_pct: p.serverCpu,
      load_cpu_pct: maxOf(p.loadCpu),
      logins: r.logins,
      failed: r.failed,
      seconds: round(s, 3),
    });
  } finally {
    await slow.stop();
  }
}

// ---------------------------------------------------------------------------------------------

const RUNNERS: Record<string, (srv: Server) => Promise<void>> = {
  relay,
  latency,
  fanout,
  world,
  offline,
  idle,
  logins,
};

function table(rows: Line[]): string {
  const cols = ["scenario", "params", "result", "unit", "server_cpu_pct", "load_cpu_pct"];
  const std = new Set([...cols, "load_cpu_pct_each", "outcome"]);
  const cells = rows.map((r) => [
    String(r.scenario),
    Object.entries(r).filter(([k]) => !std.has(k)).map(([k, v]) => `${k}=${v}`).join(" "),
    String(r.result),
    String(r.unit),
    String(r.server_cpu_pct ?? "-"),
    String(r.load_cpu_pct ?? "-"),
  ]);
  const all = [cols, ...cells];
  const w = cols.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padEnd(w[i])).join(" | ");
  return [fmt(cols), w.map((n) => "-".repeat(n)).join("-+-"), ...cells.map(fmt)].join("\n");
}

/**
 * For --repeat: each measurement's line from the run with the median result (the p99 for
 * latency, the figure its target is about), with every run's figure beside it, in run order. A
 * measurement a run could not make (a failed scenario, no reading) is left out of its median;
 * with an even number left, the lower of the middle two is taken.
 */
function medians(all: Line[]): Line[] {
  const groups = new Map<string, Line[]>();
  const seen = new Map<string, number>();
  for (const line of all) {
    // The k-th line a scenario prints in one run is the same measurement in every run.
    const at = `${line.run}/${line.scenario}`;
    const k = seen.get(at) ?? 0;
    seen.set(at, k + 1);
    const key = `${line.scenario}#${k}`;
    groups.set(key, [...(groups.get(key) ?? []), line]);
  }
  return [...groups.values()].map((group) => {
    const latency = group[0].scenario === "latency";
    const figure = (l: Line) => {
      const v = latency ? l.p99_ms : l.result;
      return typeof v === "number" && Number.isFinite(v) ? v : null;
    };
    const measured = group.filter((l) => figure(l) !== null);
    const sorted = measured.sort((a, b) => figure(a)! - figure(b)!);
    const { run: _, ...median } = sorted[Math.floor((sorted.length - 1) / 2)] ?? group[0];
    return {
      ...median,
      median_of: measured.length,
      runs: group.map((l) => l.run),
      [latency ? "p99_ms_runs" : "result_runs"]: group.map(figure),
      // Each run's latency is taken at 20 % of that run's relay result.
      ...(latency ? { rate_per_s_runs: group.map((l) => l.rate_per_s) } : {}),
      ...(group[0].scenario === "relay"
        ? { after_first_second_runs: group.map((l) => l.after_first_second ?? null) }
        : {}),
    };
  });
}

async function main(): Promise<number> {
  let code = 0;
  for (run = 1; run <= REPEAT; run++) {
    relayResult = null;
    let srv: Server;
    try {
      srv = values.addr ? existingServer(values.addr) : await startServer(1024);
    } catch (e) {
      // The runs made so far still get their medians.
      code = 1;
      console.error(`bench: the server for run ${run} did not start: ${e}`);
      break;
    }
    console.error(
      (REPEAT > 1 ? `bench: run ${run} of ${REPEAT}; ` : "bench: ") +
        (values.addr
          ? `using the server at ${values.addr} (no server CPU or memory readings)`
          : `server pid ${srv.pid} on ${srv.host}:${srv.port}; bench config: scrypt N=1024 ` +
            `for setup speed (password logins measured separately with N=131072), ` +
            `requestRate/Burst 10000000, maxConnections(PerIp) 100000, loginFreeFailures 1000; ` +
            `AES-GCM: server ${serverAes}, load processes ` +
            `${NATIVE_AES === "auto" ? "OpenSSL where it loads" : "node:crypto"}`),
    );
    try {
      for (const s of SCENARIOS) {
        try {
          await RUNNERS[s](srv);
        } catch (e) {
          code = 1;
          console.error(`bench: scenario ${s} failed: ${e instanceof Error ? e.stack : e}`);
        }
      }
    } finally {
      await srv.stop();
    }
  }
  const summary = REPEAT > 1 ? medians(lines) : lines;
  if (REPEAT > 1) { for (const line of summary) console.log(JSON.stringify(line)); }
  console.log("");
  if (REPEAT > 1) console.log(`Medians of ${REPEAT} runs:`);
  console.log(table(summary));
  console.log(
    values.addr ? "" : "(setup used scrypt N=1024; logins_password used the default N=131072)",
  );
  if (SAVED) printComparison(compareRuns(SAVED, lines));
  return code;
}

Deno.exit(await main());
