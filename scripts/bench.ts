/**
 * Benchmarks a Parley server on the loopback interface.
 *
 *   deno run -A scripts/bench.ts [--scenario NAME ...] [--addr HOST:PORT] [--quick] [--rate N]
 *                                [--repeat N] [--compare FILE] [--cluster [--nodes 1,3]]
 *
 * Scenarios: relay, latency, fanout, world, offline, idle, logins; and cluster, run only when
 * named (or with --cluster): it starts a 3-server NATS JetStream cluster and 1, then 3 Parley
 * nodes on it (each time afresh) and relays between users on different nodes, as fast as the
 * window allows (cluster_relay) and at a fixed rate (cluster_latency), after the same two runs on
 * the single server (Deno KV), reading the CPU of every node and NATS server. Without --addr it
 * starts a
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
 * BENCH_LAT_SECONDS (the measured seconds of each latency run, 5 by default), BENCH_LAT_DUMP (a
 * file for every measured latency sample, one per rate), BENCH_GO_GAP_MS (see GO_GAP_MS).
 * BENCH_NATIVE_AES=0 makes the server
 * and the load processes seal frames with node:crypto instead of OpenSSL (crypto.nativeAes), for
 * comparisons.
 */

import { freePort } from "./free_port.ts";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { ParleyClient, type Target } from "../src/client/client.ts";
import { REGISTER_QUEUE } from "../src/crypto/password.ts";
import { V8_FLAGS } from "../src/server/v8_flags.ts";
import type { LoadParams, PairSpread, SendPlan } from "./bench_load.ts";
import {
  compareRuns,
  FLOOR_PCT,
  type Line,
  measurementKeys,
  METRICS,
  printComparison,
  readBenchFile,
} from "./bench_compare.ts";
import {
  pairFigures,
  pairNodes,
  percentile,
  rotate,
  round,
  sumCpu,
  type Unread,
  unreadAt,
  unreadFigures,
  usPerOp,
} from "./bench_figures.ts";
import { NatsCluster, natsServerAvailable } from "./nats_cluster.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LOAD = fileURLToPath(new URL("./bench_load.ts", import.meta.url));
const PASSWORD = "bench-password-1";
const TICKS = 100; // clock ticks per second in /proc/<pid>/stat
const ALL = ["relay", "latency", "fanout", "world", "offline", "idle", "logins"];
/** Scenarios run only when named: `cluster` needs nats-server and starts servers of its own. */
const EXTRA = ["cluster"];
/** Parley nodes of the cluster scenario's runs, unless --nodes says otherwise. */
const CLUSTER_NODES_DEFAULT = [1, 3];
/** The fixed rates of the latency scenario (msg/s over its 50 pairs), unless --rate is given. */
const LATENCY_RATES = [3000, 10_000, 20_000];

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
        cluster: { type: "boolean", default: false },
        nodes: { type: "string" },
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

Scenarios: ${ALL.join(", ")} (all of them when none is named), and cluster (only when named).
  --cluster         the cluster scenario (alone, unless scenarios are named too): relay between
                    users on different Parley nodes over a 3-server NATS JetStream cluster, at
                    full speed and at a fixed rate, and the same on the single server (Deno KV)
  --nodes N[,M]     the cluster scenario's Parley node counts (default ${
    CLUSTER_NODES_DEFAULT.join(",")
  })
  --addr HOST:PORT  measure a running server instead of starting one (no server CPU or memory then)
  --quick           small, fast runs, to check that the bench works
  --rate N          messages per second for the latency scenario (default: ${
    LATENCY_RATES.map((r) => r.toLocaleString("en")).join(", ")
  }, one line each)
  --repeat N        N runs (an odd number), each on a fresh server, then each measurement's median
                    line (not with --addr)
  --compare FILE    then compare with a saved output of this bench (its stdout): one JSON line
                    and a table on stderr name what got slower beyond the noise (the spread of
                    the repeats, at least ${FLOOR_PCT} %); the exit code does not change`);
  Deno.exit(0);
}
const QUICK = values.quick!;
if (values.rate !== undefined && !(Number(values.rate) > 0)) {
  console.error(`--rate takes a positive number of messages per second, not "${values.rate}"`);
  Deno.exit(2);
}
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
const SCENARIOS = values.scenario?.length
  ? [...values.scenario, ...(values.cluster && !values.scenario.includes("cluster") ? EXTRA : [])]
  : values.cluster
  ? EXTRA
  : ALL;
for (const s of SCENARIOS) {
  if (!ALL.includes(s) && !EXTRA.includes(s)) {
    console.error(`Unknown scenario "${s}"; choose from ${[...ALL, ...EXTRA].join(", ")}`);
    Deno.exit(2);
  }
}
if (SCENARIOS.includes("cluster") && values.addr) {
  console.error("The cluster scenario starts its own servers; it cannot be used with --addr");
  Deno.exit(2);
}
if (values.nodes !== undefined && !SCENARIOS.includes("cluster")) {
  console.error("--nodes is for the cluster scenario: add --cluster");
  Deno.exit(2);
}
/** The Parley node counts of the cluster scenario. */
const CLUSTER_NODES = (values.nodes ?? CLUSTER_NODES_DEFAULT.join(",")).split(",").map(Number);
if (!CLUSTER_NODES.every((n) => Number.isInteger(n) && n > 0)) {
  console.error(`--nodes takes positive whole numbers, comma-separated, not "${values.nodes}"`);
  Deno.exit(2);
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

/** CPU time of all the process's threads, in clock ticks. */
function cpuTicks(pid: number | null): number | null {
  return pid === null ? null : statTicks(`/proc/${pid}/stat`);
}

/** CPU time of the process's main thread alone (Deno's JavaScript thread), in clock ticks. */
function mainThreadTicks(pid: number | null): number | null {
  return pid === null ? null : statTicks(`/proc/${pid}/task/${pid}/stat`);
}

function statTicks(path: string): number | null {
  try {
    const stat = Deno.readTextFileSync(path);
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

/** Samples the server's unread input every UNREAD_SAMPLE_MS until the returned stop(). */
function sampleUnread(port: number): () => Promise<Unread | null> {
  const seen: { sockets: number; bytes: number }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        seen.push(unreadAt(await Deno.readTextFile("/proc/net/tcp"), port));
      } catch {
        return; // no /proc: no figures
      }
      await new Promise((r) => setTimeout(r, UNREAD_SAMPLE_MS));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return unreadFigures(seen);
  };
}

/** How often the relay runs read the server's unread input (a read of /proc/net/tcp). */
const UNREAD_SAMPLE_MS = 100;

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
    // Fan-out's one sender queues about 160 MB a minute for its 99 readers, past the default
    // per-sender budget (64 MiB a minute), which would refuse its sends after about 1,900.
    queue: { senderBytesPerMinute: 2 ** 40 },
  };
}

let fixedPortUsed = false;
/** The AES-GCM implementation the (first) server said it uses. */
let serverAes = "unknown";

/**
 * A server on a fresh data dir, or on `dataIn`'s (kept when it stops); with `cluster`, a node of
 * a cluster on those NATS servers (`serve --cluster`).
 */
async function startServer(
  scryptN: number,
  dataIn?: string,
  cluster?: string[],
): Promise<Server> {
  const dir = dataIn ?? await Deno.makeTempDir({ prefix: "parley-bench-" });
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
      ...(cluster ? ["--cluster", cluster.join(",")] : []),
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
      if (dataIn === undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
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

/** CPU used between two readings (see cpuReading). */
interface CpuSpan {
  seconds: number;
  /** Percent of one core, all the server's threads. */
  serverCpu: number | null;
  /** Seconds of CPU: all the server's threads, and its main (JavaScript) thread alone. */
  serverCpuSec: number | null;
  serverMainCpuSec: number | null;
  loadCpu: (number | null)[];
  /** Seconds of CPU of each process of each group timed() was given (see its `groups`). */
  groupCpuSec: Record<string, (number | null)[]>;
}

interface Timed extends CpuSpan {
  results: Record<string, unknown>[];
  /** The span opts.window asked for. */
  window: CpuSpan | null;
  unread: Unread | null;
}

interface CpuReading {
  at: number;
  server: number | null;
  serverMain: number | null;
  loads: (number | null)[];
  groups: Record<string, (number | null)[]>;
}

function cpuReading(
  srv: Server,
  loads: Load[],
  groups: Record<string, number[]> = {},
): CpuReading {
  return {
    at: performance.now(),
    server: cpuTicks(srv.pid),
    serverMain: mainThreadTicks(srv.pid),
    loads: loads.map((l) => cpuTicks(l.pid)),
    groups: Object.fromEntries(
      Object.entries(groups).map(([name, pids]) => [name, pids.map(cpuTicks)]),
    ),
  };
}

function cpuSpan(a: CpuReading, b: CpuReading): CpuSpan {
  const seconds = (b.at - a.at) / 1000;
  const sec = (x: number | null, y: number | null) =>
    x === null || y === null ? null : (y - x) / TICKS;
  return {
    seconds,
    serverCpu: pct(a.server, b.server, seconds),
    serverCpuSec: sec(a.server, b.server),
    serverMainCpuSec: sec(a.serverMain, b.serverMain),
    loadCpu: a.loads.map((t, i) => pct(t, b.loads[i], seconds)),
    groupCpuSec: Object.fromEntries(
      Object.entries(a.groups).map((
        [name, ts],
      ) => [name, ts.map((t, i) => sec(t, b.groups[name][i]))]),
    ),
  };
}

/**
 * Starts the loads, waits until all are set up, then times the phase from `go` to all results.
 * `window` ([from, to] in ms after "go") also reads the CPU over that part alone; `unread`
 * samples the server's unread input meanwhile; `groups` names more processes whose CPU to read
 * (a cluster's nodes and NATS servers).
 */
async function timed(
  srv: Server,
  loads: Load[],
  opts: {
    window?: [number, number];
    unread?: boolean;
    groups?: Record<string, number[]>;
    /** Runs (and is awaited) beside the CPU readings at "go" and at the end. */
    probe?: () => Promise<void>;
  } = {},
): Promise<Timed> {
  try {
    for (const l of loads) {
      const r = await l.next();
      if (!r.ready) throw new Error(`Unexpected ${JSON.stringify(r)}`);
    }
    await opts.probe?.();
    const start = cpuReading(srv, loads, opts.groups);
    const marks = opts.window?.map((ms) =>
      new Promise<CpuReading>((r) => setTimeout(() => r(cpuReading(srv, loads, opts.groups)), ms))
    );
    const stopSampling = opts.unread ? sampleUnread(srv.port) : null;
    if (GO_GAP_MS > 0) {
      for (const l of loads) {
        await l.say("go");
        await new Promise((r) => setTimeout(r, GO_GAP_MS));
      }
    } else {
      await Promise.all(loads.map((l) => l.say("go")));
    }
    const results = await Promise.all(loads.map((l) => l.next()));
    const end = cpuReading(srv, loads, opts.groups);
    await opts.probe?.();
    const unread = stopSampling ? await stopSampling() : null;
    // The loads stay up until finish(), so a window that ends after them is still read.
    const window = marks
      ? cpuSpan(...(await Promise.all(marks)) as [CpuReading, CpuReading])
      : null;
    return { ...cpuSpan(start, end), results, window, unread };
  } finally {
    await Promise.all(loads.map((l) => l.finish()));
  }
}

/**
 * The CPU columns every timed scenario reports: the server's, the busiest load process's, and
 * the server's CPU time per operation (`ops` of them, each an `op`), all threads and the main
 * thread alone.
 */
function cpuFields(t: CpuSpan, ops: number, op: string) {
  return {
    server_cpu_pct: t.serverCpu,
    server_main_cpu_pct: t.serverMainCpuSec === null || t.seconds <= 0
      ? null
      : round(t.serverMainCpuSec / t.seconds * 100, 1),
    load_cpu_pct: maxOf(t.loadCpu),
    load_cpu_pct_each: t.loadCpu,
    op,
    server_cpu_us_per_op: usPerOp(t.serverCpuSec, ops),
    server_main_cpu_us_per_op: usPerOp(t.serverMainCpuSec, ops),
  };
}

/**
 * Each pair's time from "go" to its first and to its last message (see PairSpread): the spread
 * between the slowest pair and the median one, and the latest first message.
 */
function pairFields(t: Timed) {
  const spread = t.results.map((r) => r.pairs as PairSpread | undefined);
  return {
    ...pairFigures(spread.flatMap((p) => p?.firstMs ?? []), spread.flatMap((p) => p?.lastMs ?? [])),
    // How long the load processes took to hand every sender's first message to its socket.
    pair_load_issue_ms: maxOf(t.results.map((r) => (r.issuedMs as number | undefined) ?? null)),
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
    /** See timed(). */
    window?: [number, number];
    unread?: boolean;
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
  return await timed(srv, loads, { window: opts.window, unread: opts.unread });
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
): Promise<void> {
  const prime = scenario === "relay" ? Math.ceil((QUICK ? 200 : RELAY_PRIME) / pairs) : 0;
  const measured = scenario === "relay";
  const t = await pairsRun(srv, pairs, () => ({ count: each }), {
    prefix,
    prime,
    unread: measured,
  });
  const d = deliveryRate(t);
  const perSecond = timeline(t);
  report({
    scenario,
    pairs,
    messages_per_sender: each,
    window: 100,
    result: d.rate,
    unit: "msg/s",
    ...cpuFields(t, d.received, "relayed message"),
    received: d.received,
    seconds: d.seconds,
    outcome: outcomes(t),
    ...(measured
      ? { after_first_second: warmRate(t, perSecond), ...pairFields(t), ...t.unread }
      : {}),
    primed_per_sender: prime,
    timeline_msg_per_s: perSecond,
  });
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
    await relayRun(srv, "relay", pairs, QUICK ? 100 : Math.round(200_000 * SCALE / pairs));
  }
}

/**
 * BENCH_LATENCY_PROCESSES: the load processes of the latency scenario, 1 by default. With a
 * second one, three busy processes share two cores and a message can wait a scheduler time slice
 * at each of its three hops, which the p99 then measures.
 */
const LATENCY_PROCESSES = Number(Deno.env.get("BENCH_LATENCY_PROCESSES") ?? 1);
/**
 * A load process this busy (percent of a core) over the measured seconds may be what delays the
 * messages: the line says so (load_saturated), and the bench says to spread the load. At
 * 20,000 msg/s one process used up to 87 % of a core and still sent on time (under 1 % of the
 * messages over 5 ms late), with a lower p99 than two processes at 40 % each.
 */
const LOAD_SATURATED_PCT = 90;
/** BENCH_LAT_SECONDS: the measured seconds of each latency run, after its warm-up (not --quick). */
const LAT_SECONDS = Number(Deno.env.get("BENCH_LAT_SECONDS") ?? 5);
if (!(LAT_SECONDS > 0)) {
  console.error(`BENCH_LAT_SECONDS takes a positive number of seconds`);
  Deno.exit(2);
}

async function latency(srv: Server): Promise<void> {
  for (const rate of values.rate ? [Number(values.rate)] : LATENCY_RATES) {
    await latencyAt(srv, rate);
  }
}

async function latencyAt(srv: Server, rate: number): Promise<void> {
  const pairs = 50;
  const seconds = QUICK ? 2 : LAT_SECONDS;
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
    // The CPU of the measured part alone, when the messages are sent at the asked rate.
    window: [warmup * 1000, (warmup + seconds) * 1000],
  });
  // Every measured sample (not the warm-up's), per load process and in order of arrival, to see
  // when the slow ones came.
  if (LAT_DUMP) {
    const file = `${LAT_DUMP}${REPEAT > 1 ? `.${run}` : ""}.${rate}`;
    Deno.writeTextFileSync(file, JSON.stringify(t.results.map((r) => r.lat)));
  }
  const lat = t.results.flatMap((r) => r.lat as number[]).sort((a, b) => a - b);
  const withWarmup = [...lat, ...t.results.flatMap((r) => r.warmupLat as number[])]
    .sort((a, b) => a - b);
  // The rate the measured messages were sent at: their count over their send times' span.
  const sentFirst = Math.min(...t.results.map((r) => r.measuredSentFirst as number));
  const sentLast = Math.max(...t.results.map((r) => r.measuredSentLast as number));
  const achieved = lat.length > 1 && sentLast > sentFirst
    ? round((lat.length - 1) / ((sentLast - sentFirst) / 1000), 0)
    : null;
  const loadCpu = maxOf(t.window!.loadCpu);
  const saturated = loadCpu !== null && loadCpu >= LOAD_SATURATED_PCT;
  if (saturated) {
    console.error(
      `bench: at ${rate} msg/s a load process used ${loadCpu} % of a core: its own delay may be ` +
        `in the latencies; BENCH_LATENCY_PROCESSES=2 spreads the load`,
    );
  }
  const lateCounted = t.results.reduce((a, r) => a + (r.lateCounted as number), 0);
  const lateOver5 = t.results.reduce((a, r) => a + (r.lateOver5ms as number), 0);
  report({
    scenario: "latency",
    pairs,
    rate_per_s: rate,
    processes: LATENCY_PROCESSES,
    seconds,
    warmup_s: warmup,
    result: round(percentile(lat, 0.5), 2),
    unit: "ms p50",
    // Over the measured seconds, per message sent in them.
    ...cpuFields(t.window!, lat.length, "message"),
    achieved_rate_per_s: achieved,
    load_saturated: saturated,
    // The load's own lateness against its schedule: a saturated load process shows here.
    send_late_ms_max: maxOf(t.results.map((r) => r.lateMaxMs as number)),
    send_late_over_5ms_pct: lateCounted ? round(lateOver5 / lateCounted * 100, 2) : null,
    p50_ms: round(percentile(lat, 0.5), 2),
    p99_ms: round(percentile(lat, 0.99), 2),
    max_ms: round(lat[lat.length - 1] ?? NaN, 2),
    p50_ms_with_warmup: round(percentile(withWarmup, 0.5), 2),
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
    ...cpuFields(t, d.received, "delivery"),
    received: d.received,
    // Copies the server did not queue, the member's queue being full (SENT's skipped).
    skipped_copies: t.results.reduce((a, r) => a + ((r.skipped as number | undefined) ?? 0), 0),
    // Sends the server refused (a budget, say): a run that times out says so here.
    failed_sends: t.results.reduce((a, r) => a + ((r.failed as number | undefined) ?? 0), 0),
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
    ...cpuFields(t, r.received as number, "message delivered"),
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

/** Holds `users` logged in and idle, split over two load processes, until stop(). */
async function holdIdle(srv: Server, users: string[]) {
  const loads = [0, 1].map((k) =>
    new Load({
      role: "idle",
      users: users.filter((_, i) => i % 2 === k),
      setupConcurrency: 100,
    }, srv)
  );
  const stop = async () => {
    await Promise.all(loads.map((l) => l.say("stop").catch(() => {})));
    await Promise.all(loads.map((l) => l.finish()));
  };
  try {
    let held = 0;
    for (const l of loads) held += (await l.next()).connections as number;
    return { held, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function idle(srv: Server): Promise<void> {
  // 20,000 connections need 20,000 descriptors on top of the server's own; where the limit is
  // lower, the last step holds as many as it allows and says so.
  const fdLimit = openFileLimit(srv.pid);
  const most = fdLimit === null ? 20_000 : Math.min(20_000, fdLimit - FD_RESERVE);
  const sizes = QUICK ? [200] : [1000, 5000, most];
  const capped = (n: number) =>
    n < 20_000 && n === most ? { capped_by_open_file_limit: fdLimit } : {};
  for (const n of sizes) {
    const users = names(`i${n}x`, n);
    await register(srv, users);
    await sleep(1000);
    const heapBefore = await collectGarbage(srv);
    const gc = heapBefore !== null;
    const before = rssKiB(srv.pid);
    const idle = await holdIdle(srv, users);
    try {
      await sleep(2000);
      const heapAfter = gc ? await collectGarbage(srv) : null;
      const after = rssKiB(srv.pid);
      const cpuIdle0 = cpuTicks(srv.pid);
      await sleep(2000);
      const cpuIdle = pct(cpuIdle0, cpuTicks(srv.pid), 2);
      report({
        scenario: "idle",
        connections: idle.held,
        result: before !== null && after !== null ? round((after - before) * 1024 / n, 0) : null,
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
        ...capped(n),
      });
    } finally {
      await idle.stop();
    }
  }
  if (srv.pid !== null) await idleNoGc(sizes, capped);
}

/**
 * RSS per idle connection as `ps` shows it, with no forced collection, as other servers are
 * measured: a freshly started server that holds the users (registered in a run of its own, whose
 * garbage would weigh on the baseline), its RSS once settled, then again IDLE_SETTLE_MS after
 * `n` connections have logged in. A fresh server for each size, on the same data.
 */
async function idleNoGc(
  sizes: number[],
  capped: (n: number) => Record<string, unknown>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-bench-idle-" });
  try {
    const users = names("in", Math.max(...sizes));
    const setup = await startServer(1024, dir);
    try {
      await register(setup, users);
    } finally {
      await setup.stop();
    }
    for (const n of sizes) {
      const srv = await startServer(1024, dir);
      try {
        await sleep(IDLE_SETTLE_MS);
        const before = rssKiB(srv.pid);
        const idle = await holdIdle(srv, users.slice(0, n));
        try {
          // Soon after the logins, and once the server has been quiet long enough for its idle
          // collector (src/server/idle_collector.ts) to give the burst's garbage back.
          await sleep(IDLE_SETTLE_MS);
          const soon = rssKiB(srv.pid);
          await sleep(IDLE_QUIET_MS - IDLE_SETTLE_MS);
          const after = rssKiB(srv.pid);
          const perConn = (kib: number | null) =>
            before !== null && kib !== null ? round((kib - before) * 1024 / n, 0) : null;
          report({
            scenario: "idle_no_gc",
            connections: idle.held,
            result: perConn(after),
            unit: "bytes RSS/conn",
            rss_before_kib: before,
            rss_after_kib: after,
            after_s: IDLE_QUIET_MS / 1000,
            [`result_at_${IDLE_SETTLE_MS / 1000}s`]: perConn(soon),
            baseline: "fresh server, no forced GC",
            ...capped(n),
          });
        } finally {
          await idle.stop();
        }
      } finally {
        await srv.stop();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** How long a fresh server settles, and its idle connections are then held, before a reading. */
const IDLE_SETTLE_MS = 3000;
/** When idle_no_gc takes its reading: the idle collector's quiet time has passed by then. */
const IDLE_QUIET_MS = 10_000;

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
    ...cpuFields(t, logins, "login"),
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
      ...cpuFields(p, r.logins as number, "login"),
      logins: r.logins,
      failed: r.failed,
      seconds: round(s, 3),
    });
  } finally {
    await slow.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Cluster

/** Relay pairs of the cluster scenario (--quick: 10). */
const CLUSTER_PAIRS = 50;
/** How long the cluster relay's senders send, in ms after "go" (--quick: 1000). */
const CLUSTER_SEND_MS = 4000;
/** The first part of the sending whose latencies are not measured (--quick: 250). */
const CLUSTER_WARMUP_MS = 1000;
/** Messages each sender sends, untimed, before the run: the nodes' and loads' code warms up. */
const CLUSTER_PRIME = 40;
/**
 * SENDs each sender keeps unanswered. Smaller than relay's 100: a cluster relays a few hundred
 * messages a second here, and 50 windows of 100 would take half a minute to drain after the
 * senders stop (the latency measured is then mostly the wait in that queue).
 */
const CLUSTER_WINDOW = 10;
/**
 * Messages per second (over all pairs) of the cluster's latency run: well below what a 3-node
 * cluster relays here, so that its latency is the round trips' and not a queue's.
 */
const CLUSTER_RATE = 100;

/** Where the cluster relay runs: one server on Deno KV, or N nodes on a NATS cluster. */
interface Deployment {
  store: "kv" | "nats";
  nodes: Server[];
  /** The NATS servers' pids (none for the single server). */
  nats: number[];
  /** Their HTTP monitoring ports. */
  monitors: number[];
}

/**
 * Messages the NATS servers' clients (the Parley nodes) sent to NATS (publishes and requests)
 * and received from it (replies, acknowledgements, subscriptions' messages), from /connz.
 */
async function natsClientMessages(monitors: number[]): Promise<{ in: number; out: number }> {
  const sum = { in: 0, out: 0 };
  for (const port of monitors) {
    const r = await fetch(`http://127.0.0.1:${port}/connz?limit=10000`);
    const connz = await r.json() as { connections?: { in_msgs: number; out_msgs: number }[] };
    for (const c of connz.connections ?? []) {
      sum.in += c.in_msgs;
      sum.out += c.out_msgs;
    }
  }
  return sum;
}

/** A fresh 3-server NATS JetStream cluster and `n` Parley nodes on it, each a child process. */
async function startCluster(n: number): Promise<Deployment & { stop(): Promise<void> }> {
  const nats = await NatsCluster.start({ monitor: true });
  const nodes: Server[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await nats.stop();
  };
  try {
    // One after another: the first makes the cluster's identity key, the others read it.
    for (let i = 0; i < n; i++) {
      nodes.push(await startServer(1024, undefined, rotate(nats.urls, i)));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const nodePids = nats.nodes.map((node) => node.process!.pid);
  console.error(
    `bench: cluster of ${n} Parley node(s) (pids ${nodes.map((x) => x.pid).join(", ")}, ports ` +
      `${nodes.map((x) => x.port).join(", ")}) on NATS ${nats.urls.join(",")} (pids ` +
      `${nodePids.join(", ")})`,
  );
  const monitors = nats.nodes.map((node) => node.monitorPort!);
  return { store: "nats", nodes, nats: nodePids, monitors, stop };
}

/**
 * Relay between pairs whose two users are on different nodes (sender on node i, receiver on
 * node i + 1) for CLUSTER_SEND_MS, then until every message sent has arrived: messages per
 * second, their latency after the warm-up, and the CPU per message of the Parley nodes and of the
 * NATS servers, each summed over its processes. With `rate` (messages per second over all the
 * pairs) the senders keep to it, and the line is the latency at that rate (cluster_latency).
 */
async function clusterRelay(d: Deployment, rate?: number): Promise<void> {
  const n = d.nodes.length;
  const pairs = QUICK ? 10 : CLUSTER_PAIRS;
  const sendMs = QUICK ? 1000 : CLUSTER_SEND_MS;
  const warmupMs = QUICK ? 250 : CLUSTER_WARMUP_MS;
  const prime = QUICK ? 5 : CLUSTER_PRIME;
  // Other work on the machine stretches every round trip: the line says how busy it was.
  const loadAvg = Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  const senders = names(`c${d.store}${n}${rate ? "l" : ""}s`, pairs);
  const receivers = names(`c${d.store}${n}${rate ? "l" : ""}r`, pairs);
  // Rate mode: the senders take turns, together an even `rate`.
  const perSender = rate ? rate / pairs : 0;
  const paced = (i: number) =>
    rate ? { rate: perSender, offsetMs: (i / pairs) * (1000 / perSender) } : {};
  await register(d.nodes[0], [...senders, ...receivers]);
  const ports: Record<string, number> = {};
  senders.forEach((s, i) => {
    const at = pairNodes(i, n);
    ports[s] = d.nodes[at.sender].port;
    ports[receivers[i]] = d.nodes[at.receiver].port;
  });
  const processes = 2;
  const loads = [...Array(processes).keys()].map((k) => {
    const idx = [...Array(pairs).keys()].filter((i) => i % processes === k);
    return new Load({
      role: "chat",
      users: idx.flatMap((i) => [senders[i], receivers[i]]),
      ports,
      // An upper bound: the senders stop at sendForMs.
      sends: idx.map((i) => ({
        from: senders[i],
        to: { user: receivers[i] },
        count: 1e9,
        ...paced(i),
      })),
      sendForMs: sendMs,
      window: CLUSTER_WINDOW,
      latencies: true,
      warmupMs,
      primeMessages: prime,
      primeExpect: prime * idx.length,
      durationMs: sendMs + 120_000,
    }, d.nodes[0]);
  });
  const counted: { in: number; out: number }[] = [];
  const t = await timed(d.nodes[0], loads, {
    groups: { parley: d.nodes.map((x) => x.pid!), nats: d.nats },
    probe: async () => {
      if (d.monitors.length) counted.push(await natsClientMessages(d.monitors));
    },
  });
  const delivered = deliveryRate(t);
  const lat = t.results.flatMap((r) => r.lat as number[]).sort((a, b) => a - b);
  const parleySec = sumCpu(t.groupCpuSec.parley);
  const natsSec = sumCpu(t.groupCpuSec.nats);
  const pctOf = (sec: number | null) =>
    sec === null || t.seconds <= 0 ? null : round(sec / t.seconds * 100, 1);
  const parleyUs = usPerOp(parleySec, delivered.received);
  const natsUs = usPerOp(natsSec, delivered.received);
  const perMessage = (k: "in" | "out") =>
    counted.length === 2 && delivered.received > 0
      ? round((counted[1][k] - counted[0][k]) / delivered.received, 1)
      : null;
  report({
    scenario: rate ? "cluster_latency" : "cluster_relay",
    store: d.store,
    nodes: n,
    nats_servers: d.nats.length,
    pairs,
    ...(rate ? { rate_per_s: rate } : {}),
    placement: n > 1 ? "sender on node i, receiver on node i+1" : "both on the one node",
    send_s: sendMs / 1000,
    window: CLUSTER_WINDOW,
    ...(rate
      ? { result: round(percentile(lat, 0.5), 2), unit: "ms p50", msgs_per_s: delivered.rate }
      : { result: delivered.rate, unit: "msg/s" }),
    p50_ms: round(percentile(lat, 0.5), 2),
    p99_ms: round(percentile(lat, 0.99), 2),
    max_ms: round(lat[lat.length - 1] ?? NaN, 2),
    latency_after_ms: warmupMs,
    op: "relayed message",
    // All the Parley nodes, summed; the NATS servers, summed; both.
    server_cpu_us_per_op: parleyUs,
    nats_cpu_us_per_op: natsUs,
    total_cpu_us_per_op: parleyUs === null || natsUs === null ? null : round(parleyUs + natsUs, 1),
    server_cpu_pct: pctOf(parleySec),
    nats_cpu_pct: pctOf(natsSec),
    node_cpu_pct_each: t.groupCpuSec.parley.map(pctOf),
    nats_cpu_pct_each: t.groupCpuSec.nats.map(pctOf),
    load_cpu_pct: maxOf(t.loadCpu),
    load_cpu_pct_each: t.loadCpu,
    // What the nodes sent NATS (publishes, requests) and heard from it, per relayed message.
    nats_msgs_sent_per_op: perMessage("in"),
    nats_msgs_heard_per_op: perMessage("out"),
    received: delivered.received,
    seconds: delivered.seconds,
    outcome: outcomes(t),
    primed_per_sender: prime,
    loadavg_1m_before: loadAvg,
  });
}

/**
 * The relay across nodes on a NATS cluster of 1 and 3 Parley nodes (--nodes), each on a fresh
 * 3-server NATS cluster, after the same relay on the single server (Deno KV) for comparison.
 */
async function cluster(srv: Server): Promise<void> {
  if (!await natsServerAvailable()) {
    throw new Error("the cluster scenario needs nats-server on PATH (apt-get install nats-server)");
  }
  const single: Deployment = { store: "kv", nodes: [srv], nats: [], monitors: [] };
  await clusterRelay(single);
  await clusterRelay(single, CLUSTER_RATE);
  for (const n of CLUSTER_NODES) {
    const c = await startCluster(n);
    try {
      await clusterRelay(c);
      await clusterRelay(c, CLUSTER_RATE);
    } finally {
      await c.stop();
    }
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
  cluster,
};

/** Parameters shown in the table's params column (everything is in the JSON lines). */
const TABLE_PARAMS = [
  "store",
  "nodes",
  "pairs",
  "rate_per_s",
  "processes",
  "members",
  "online",
  "queued",
  "connections",
  "concurrency",
  "scrypt_N",
];

/** The table's "key figures" column: the figures issue 20's targets are about, per scenario. */
function keyFigures(r: Line): string {
  const v = (x: unknown) => x === undefined || x === null ? "-" : String(x);
  switch (r.scenario) {
    case "latency":
      return `p50/p99/max ${v(r.p50_ms)}/${v(r.p99_ms)}/${v(r.max_ms)} ms, ` +
        `achieved ${v(r.achieved_rate_per_s)}/s`;
    case "cluster_relay":
    case "cluster_latency":
      return `p50/p99 ${v(r.p50_ms)}/${v(r.p99_ms)} ms, ` +
        `µs/msg Parley ${v(r.server_cpu_us_per_op)} + NATS ${v(r.nats_cpu_us_per_op)}`;
    case "relay":
      return `pairs done max/median ${v(r.pair_done_ratio)}, ` +
        `first msg max ${v(r.pair_first_ms_max)} ms, ` +
        `unread max ${v(r.unread_sockets_max)} sockets ${v(r.unread_bytes_max)} B`;
    default:
      return "";
  }
}

function table(rows: Line[]): string {
  const cols = [
    "scenario",
    "params",
    "result",
    "unit",
    "server_cpu_pct",
    "server µs/op (main)",
    "load_cpu_pct",
    "key figures",
  ];
  const cells = rows.map((r) => [
    String(r.scenario),
    TABLE_PARAMS.filter((k) => r[k] !== undefined).map((k) => `${k}=${r[k]}`).join(" "),
    String(r.result),
    String(r.unit),
    String(r.server_cpu_pct ?? "-"),
    r.server_cpu_us_per_op === undefined || r.server_cpu_us_per_op === null
      ? "-"
      : `${r.server_cpu_us_per_op} (${r.server_main_cpu_us_per_op ?? "-"}) /${r.op}`,
    String(r.load_cpu_pct ?? "-"),
    keyFigures(r),
  ]);
  const all = [cols, ...cells];
  const w = cols.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padEnd(w[i])).join(" | ").trimEnd();
  return [fmt(cols), w.map((n) => "-".repeat(n)).join("-+-"), ...cells.map(fmt)].join("\n");
}

/**
 * For --repeat: each measurement's line from the run with the median result (the p99 for
 * latency, the figure its target is about), with every run's figure beside it, in run order;
 * the other compared figures (METRICS: CPU per operation, the pairs' spread …) are their own
 * medians, each with every run's value as `<name>_runs`. A
 * measurement a run could not make (a failed scenario, no reading) is left out of its median;
 * with an even number left, the lower of the middle two is taken.
 */
function medians(all: Line[]): Line[] {
  const groups = new Map<string, Line[]>();
  const keys = measurementKeys(all);
  all.forEach((line, i) => groups.set(keys[i], [...(groups.get(keys[i]) ?? []), line]));
  return [...groups.values()].map((group) => {
    const latency = group[0].scenario === "latency";
    const figure = (l: Line) => {
      const v = latency ? l.p99_ms : l.result;
      return typeof v === "number" && Number.isFinite(v) ? v : null;
    };
    const measured = group.filter((l) => figure(l) !== null);
    const sorted = measured.sort((a, b) => figure(a)! - figure(b)!);
    const { run: _, ...median } = sorted[Math.floor((sorted.length - 1) / 2)] ?? group[0];
    // Every run's value of each compared figure, for --compare and for people, and the other
    // compared figures' own medians in place of the median run's.
    const compared = Object.keys(METRICS).filter((m) => group.some((l) => l[m] !== undefined));
    const runsOf = compared.map((m) =>
      [
        m,
        group.map((l) => typeof l[m] === "number" && Number.isFinite(l[m]) ? l[m] : null),
      ] as const
    );
    const own = runsOf.filter(([m]) => m !== "result" && m !== "p99_ms").map(([m, xs]) => {
      const ok = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
      return [m, ok.length ? ok[Math.floor((ok.length - 1) / 2)] : null];
    });
    return {
      ...median,
      ...Object.fromEntries(own),
      median_of: measured.length,
      runs: group.map((l) => l.run),
      ...Object.fromEntries(runsOf.map(([m, xs]) => [`${m}_runs`, xs])),
      ...(group[0].scenario === "relay"
        ? { after_first_second_runs: group.map((l) => l.after_first_second ?? null) }
        : {}),
    };
  });
}

async function main(): Promise<number> {
  let code = 0;
  for (run = 1; run <= REPEAT; run++) {
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
