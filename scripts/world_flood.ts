/**
 * Measures what a world-room flood costs the server: one sender floods the world room while
 * readers receive every message and a bystander pings. Prints the server's resident memory
 * (before, peak, and after the flood has drained and the server sat idle), the bystander's
 * worst round trip, and how many readers were cut off. The server is a real `parley serve`
 * child; the clients run in this process.
 *
 *   deno run -A scripts/world_flood.ts [--readers 9] [--mib 44] [--text 16000] [--config FILE]
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { ParleyClient } from "../src/client/client.ts";
import { KnownHosts } from "../src/client/known_hosts.ts";
import { MsgType } from "../src/protocol/messages.ts";
import { startServerChild } from "./server_child.ts";

const { values } = parseArgs({
  options: {
    readers: { type: "string", default: "9" },
    mib: { type: "string", default: "44" },
    text: { type: "string", default: "16000" },
    config: { type: "string" },
    idle: { type: "string", default: "5000" },
    // Internal: run as the bystander's process, pinging the server on this port.
    "bystander-port": { type: "string" },
    "known-hosts": { type: "string" },
  },
});

if (values["bystander-port"]) {
  // In a process of its own, so that the readers' decoding does not slow its own round trips.
  const c = await ParleyClient.connect({
    host: "127.0.0.1",
    port: Number(values["bystander-port"]),
    knownHosts: new KnownHosts(values["known-hosts"]!),
  });
  await c.login("bystander", "password-bystander");
  let worst = 0, stop = false;
  void (async () => {
    for await (const _ of Deno.stdin.readable) { /* until the parent closes stdin */ }
    stop = true;
  })();
  console.log("ready");
  while (!stop) {
    const t = performance.now();
    await c.ping();
    worst = Math.max(worst, performance.now() - t);
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(JSON.stringify({ worst }));
  c.close();
  Deno.exit(0);
}
const READERS = Number(values.readers);
const TEXT_BYTES = Number(values.text);
const MESSAGES = Math.ceil(Number(values.mib) * 1024 * 1024 / TEXT_BYTES);
const IN_FLIGHT = 400;

const dir = await Deno.makeTempDir({ prefix: "parley-flood-" });
const config = join(dir, "config.json");
await Deno.writeTextFile(
  config,
  values.config ? await Deno.readTextFile(values.config) : JSON.stringify({
    // Every reader registers from this one address.
    accounts: { scrypt: { N: 1024, r: 8, p: 1 }, registerPerIp: 1000, registerPerHour: 1000 },
    limits: { requestRate: 1_000_000, requestBurst: 1_000_000 },
    http: { enabled: true, port: 0 },
  }),
);
const disconnects: string[] = [];
const server = await startServerChild(config, join(dir, "data"), {
  http: true,
  onLog: (line) => {
    if (/fault|slow|stall/i.test(line)) disconnects.push(line);
  },
});
const { port, httpPort, rss } = server;
const child = server.process;
/** The server's own memory figures (V8 heap, memory outside it), where /metrics is on. */
async function memory(): Promise<Record<string, number>> {
  if (!httpPort) return {};
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const name of ["heap_used", "heap_total", "external_memory"]) {
    const m = new RegExp(`^parley_process_${name}_bytes (\\S+)$`, "m").exec(text);
    if (m) out[name + "_mb"] = Math.round(Number(m[1]) / 1e6);
  }
  return out;
}
let peakMemory: Record<string, number> = {};
let peakKinds: Record<string, number> = {};
/** The server's resident memory by kind (anonymous, file-backed, shared), in MB. */
function rssKinds(): Record<string, number> {
  const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
  const out: Record<string, number> = {};
  for (const kind of ["RssAnon", "RssFile", "RssShmem"]) {
    const m = new RegExp(`${kind}:\\s+(\\d+) kB`).exec(status);
    if (m) out[kind] = Math.round(Number(m[1]) / 1000);
  }
  return out;
}

const knownHosts = new KnownHosts(join(dir, "known_hosts"));
async function user(name: string): Promise<ParleyClient> {
  const c = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts });
  await c.register(name, "password-" + name);
  await c.login(name, "password-" + name);
  return c;
}

const readers = await Promise.all(Array.from({ length: READERS }, (_, i) => user(`reader${i}`)));
const sender = await user("sender");
const bystander = await user("bystander");
await new Promise((r) => setTimeout(r, 1000));
const before = rss();

let peak = before;
const sampler = setInterval(() => {
  const now = rss();
  if (now > peak) {
    peak = now;
    peakKinds = rssKinds();
    void memory().then((m) => peakMemory = m, () => {});
  }
}, 50);
bystander.close();
const pinger = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "--quiet",
    new URL(import.meta.url).pathname,
    "--bystander-port",
    String(port),
    "--known-hosts",
    join(dir, "known_hosts"),
  ],
  stdin: "piped",
  stdout: "piped",
}).spawn();
const pingOut = pinger.stdout.pipeThrough(new TextDecoderStream()).getReader();
let pingText = "";
while (!pingText.includes("ready")) pingText += (await pingOut.read()).value ?? "";

const received = new Array(READERS).fill(0);
const cut = new Array(READERS).fill(false);
const reading = readers.map(async (c, i) => {
  try {
    for (let n = 0; n < MESSAGES; n++) {
      await c.nextEvent(MsgType.PASS, 60_000);
      received[i]++;
    }
  } catch {
    cut[i] = true;
  }
});

const text = "x".repeat(TEXT_BYTES);
const started = performance.now();
let sent = 0, refused = 0;
const inFlight = new Set<Promise<unknown>>();
for (let n = 0; n < MESSAGES; n++) {
  const p = sender.sendText({ world: true }, text).then(() => sent++, () => refused++);
  inFlight.add(p);
  void p.finally(() => inFlight.delete(p));
  if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
}
await Promise.all(inFlight);
await Promise.all(reading);
const floodSeconds = (performance.now() - started) / 1000;
await pinger.stdin.close();
while (true) {
  const { value, done } = await pingOut.read();
  if (done) break;
  pingText += value;
}
await pinger.status;
const worstPing = JSON.parse(pingText.slice(pingText.indexOf("{"))).worst;
await new Promise((r) => setTimeout(r, Number(values.idle)));
clearInterval(sampler);
const after = rss();

console.log(JSON.stringify({
  readers: READERS,
  messages: MESSAGES,
  text_bytes: TEXT_BYTES,
  mib_per_reader: Number(values.mib),
  sent,
  refused,
  received_min: Math.min(...received),
  readers_cut_off: cut.filter(Boolean).length,
  flood_seconds: Number(floodSeconds.toFixed(1)),
  rss_before_mb: Math.round(before / 1e6),
  rss_peak_mb: Math.round(peak / 1e6),
  rss_after_idle_mb: Math.round(after / 1e6),
  at_peak: { ...peakMemory, ...peakKinds },
  after_idle: { ...await memory(), ...rssKinds() },
  bystander_worst_ping_ms: Math.round(worstPing),
  server_fault_lines: disconnects.length,
  faults: disconnects.slice(0, 3),
}));
for (const c of [...readers, sender]) c.close();
await server.stop();
await Deno.remove(dir, { recursive: true });
