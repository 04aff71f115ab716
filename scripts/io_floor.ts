/**
 * The floor under Parley's cost per message: what the socket operations of one relayed message
 * cost a Deno process on this machine when it does nothing else.
 *
 *   deno run -A scripts/io_floor.ts [--rate N] [--seconds S] [--pairs P]
 *
 * A relay with Parley's shape and none of its work (no encryption, no parsing, no store): each
 * message is one read from the sender and one write to the recipient (SEND, PASS), then one read
 * from the recipient and one write to the sender (ACK, SENT), as a chat message at a steady rate
 * costs Parley. A load process sends at a fixed rate over `pairs` pairs and acknowledges each
 * delivery. Prints one JSON line: the relay's CPU time per message (user and system, from
 * /proc), which `deno task bench`'s latency lines can be set against.
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    role: { type: "string" },
    port: { type: "string" },
    rate: { type: "string", default: "3000" },
    seconds: { type: "string", default: "5" },
    pairs: { type: "string", default: "50" },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const PAIRS = Number(values.pairs);
const SEND_BYTES = 120; // about a sealed SEND of a short text
const PASS_BYTES = 160;
const ACK_BYTES = 30;
const SENT_BYTES = 60;

if (values.role === "relay") await relay();
else if (values.role === "load") await load(Number(values.port));
else await main();

/** Connections 2i (senders) and 2i+1 (recipients), in order of arrival. */
async function relay(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log((listener.addr as Deno.NetAddr).port);
  const conns: Deno.Conn[] = [];
  const pass = new Uint8Array(PASS_BYTES);
  const sent = new Uint8Array(SENT_BYTES);
  for await (const conn of listener) {
    const index = conns.length;
    conns.push(conn);
    conn.setNoDelay(true);
    void (async () => {
      const buf = new Uint8Array(4096);
      try {
        while (true) {
          const n = await conn.read(buf);
          if (n === null) return;
          // Each read is one message or more; one write answers all of them, as Parley's turn
          // coalesces what one connection gets.
          const out = index % 2 === 0 ? pass : sent;
          const peer = conns[index % 2 === 0 ? index + 1 : index - 1];
          const count = Math.max(1, Math.round(n / (index % 2 === 0 ? SEND_BYTES : ACK_BYTES)));
          await peer.write(count === 1 ? out : new Uint8Array(out.length * count));
        }
      } catch {
        // The load went away.
      }
    })();
  }
}

async function load(port: number): Promise<void> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < 2 * PAIRS; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    conns.push(conn);
  }
  const send = new Uint8Array(SEND_BYTES);
  const ack = new Uint8Array(ACK_BYTES);
  let delivered = 0;
  for (let p = 0; p < PAIRS; p++) {
    const recipient = conns[2 * p + 1];
    const sender = conns[2 * p];
    void (async () => {
      const buf = new Uint8Array(65536);
      while (true) {
        const n = await recipient.read(buf).catch(() => null);
        if (n === null) return;
        delivered += Math.max(1, Math.round(n / PASS_BYTES));
        await recipient.write(ack);
      }
    })();
    void (async () => {
      const buf = new Uint8Array(65536);
      while ((await sender.read(buf).catch(() => null)) !== null) { /* SENT */ }
    })();
  }
  console.log("ready");
  const start = performance.now();
  let next = 0;
  const total = RATE * SECONDS;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * RATE));
      for (; next < due; next++) void conns[2 * (next % PAIRS)].write(send);
      if (next >= total) {
        clearInterval(timer);
        done();
      }
    }, 1);
  });
  await new Promise((r) => setTimeout(r, 200));
  console.log(JSON.stringify({ sent: next, delivered }));
  for (const c of conns) c.close();
}

/** utime and stime of a process, in clock ticks (100 per second). */
function cpu(pid: number): { user: number; system: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]), system: Number(fields[12]) };
}

async function main(): Promise<void> {
  const self = new URL(import.meta.url).pathname;
  const relayChild = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "--role", "relay"],
    stdout: "piped",
  }).spawn();
  const relayLines = relayChild.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await relayLines.read()).value!.trim());
  const loadChild = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "--role", "load", "--port", String(port), ...passOn()],
    stdout: "piped",
  }).spawn();
  const loadLines = loadChild.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready")) text += (await loadLines.read()).value ?? "";
  const before = cpu(relayChild.pid);
  while (!text.includes("}")) text += (await loadLines.read()).value ?? "";
  const after = cpu(relayChild.pid);
  const { sent, delivered } = JSON.parse(text.slice(text.indexOf("{")));
  relayChild.kill();
  await Promise.all([relayChild.status, loadChild.status]);
  const perMessage = (ticks: number) => Math.round((ticks * 10_000) / delivered * 10) / 10;
  console.log(JSON.stringify({
    scenario: "io_floor",
    pairs: PAIRS,
    rate_per_s: RATE,
    seconds: SECONDS,
    sent,
    delivered,
    relay_cpu_us_per_msg: perMessage(after.user - before.user + after.system - before.system),
    relay_user_us_per_msg: perMessage(after.user - before.user),
    relay_system_us_per_msg: perMessage(after.system - before.system),
  }));
}

function passOn(): string[] {
  return ["--rate", String(RATE), "--seconds", String(SECONDS), "--pairs", String(PAIRS)];
}
