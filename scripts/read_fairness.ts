/**
 * In what order does this Deno serve sockets that all have input waiting? No Parley code: a plain
 * server process and a client process on loopback.
 *
 *   deno run -A scripts/read_fairness.ts [--connections 1000] [--kib 64] [--work-us 10]
 *
 * The client opens the connections and writes `kib` KiB on each; the server starts reading only
 * 1.5 s later, when every byte waits in the kernel, with a 16 KiB buffer, spending `work-us` µs
 * of CPU per KiB read (Parley spends about 10 per message of ~100 bytes). Served in turn, every
 * connection's first read would come within connections × one read's cost. The JSON line says
 * when the first and last reads came (ms from the first read, percentiles over connections).
 *
 * On this machine with Deno 2.9.6 (1,000 connections, 64 KiB, 10 µs/KiB, about 0.2 ms a read):
 * first reads p50 ≈ 300 ms, max ≈ 650–830 ms; with `--kib 16` (one read each) the max is about
 * 200 ms, what reading the sockets in turn gives. A socket whose earlier read left bytes behind
 * is read again at once, while a read waiting on a socket that became readable meanwhile is woken
 * only when the event loop goes idle and tokio's reactor polls epoll. Under load that makes the
 * connections already being served come first.
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    connections: { type: "string", default: "1000" },
    kib: { type: "string", default: "64" },
    "work-us": { type: "string", default: "10" },
    role: { type: "string" },
    port: { type: "string" },
  },
});
const connections = Number(values.connections);
const kib = Number(values.kib);
const workUs = Number(values["work-us"]);

if (values.role === "server") await serve();
else if (values.role === "client") await client(Number(values.port));
else await main();

async function main(): Promise<void> {
  const self = new URL(import.meta.url).pathname;
  const common = ["--connections", String(connections), "--kib", String(kib)];
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "--role", "server", "--work-us", String(workUs), ...common],
    stdout: "piped",
  }).spawn();
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await lines.read()).value ?? "";
  const port = Number(text.trim());
  const client = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "--role", "client", "--port", String(port), ...common],
  }).spawn();
  let rest = "";
  for (let r = await lines.read(); !r.done; r = await lines.read()) rest += r.value;
  try {
    client.kill();
  } catch {
    // ended already
  }
  await client.status;
  console.log(rest.trim());
}

async function serve(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log((listener.addr as Deno.NetAddr).port);
  const first: number[] = [];
  const last: number[] = [];
  let t0 = 0;
  let start!: () => void;
  const started = new Promise<void>((r) => start = r);
  const spin = (us: number) => {
    const end = performance.now() + us / 1000;
    while (performance.now() < end);
  };
  let accepted = 0;
  let finished = 0;
  for await (const conn of listener) {
    const i = accepted++;
    if (i === 0) setTimeout(start, 1500);
    (async () => {
      const buf = new Uint8Array(16 * 1024);
      await started;
      let left = kib * 1024;
      while (left > 0) {
        const n = await conn.read(buf);
        if (n === null) break;
        const now = performance.now();
        t0 ||= now;
        first[i] ??= now - t0;
        last[i] = now - t0;
        left -= n;
        spin(workUs * n / 1024);
      }
      if (++finished === connections) report();
    })();
    if (accepted === connections) break;
  }

  function report(): void {
    const pct = (xs: number[], p: number) => {
      const s = xs.slice().sort((a, b) => a - b);
      return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]);
    };
    console.log(JSON.stringify({
      connections,
      kib,
      work_us_per_kib: workUs,
      first_read_ms: { p50: pct(first, 0.5), p90: pct(first, 0.9), max: pct(first, 1) },
      last_read_ms: { p50: pct(last, 0.5), max: pct(last, 1) },
      deno: Deno.version.deno,
    }));
    Deno.exit(0);
  }
}

async function client(port: number): Promise<void> {
  const conns = await Promise.all(
    Array.from({ length: connections }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  const data = new Uint8Array(kib * 1024);
  await Promise.all(conns.map(async (c) => {
    for (let off = 0; off < data.length;) off += await c.write(data.subarray(off));
  }));
  // Held open (a read pending on each) until the parent ends it.
  await Promise.all(conns.map((c) => c.read(new Uint8Array(1))));
}
