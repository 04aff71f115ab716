/**
 * Measures what connections that ask for answers and never read them cost the server: each
 * does the handshake, then sends PINGs (before login, which echo their body) for a while and
 * reads nothing. Prints the server's resident memory before, at its peak and at the end, and
 * how many of the connections the server closed. The server is a real `parley serve` child.
 *
 *   deno run -A scripts/echo_flood.ts [--connections 50] [--seconds 10] [--body 60000]
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { FrameSealer } from "../src/crypto/cipher.ts";
import { encodeMessages } from "../src/protocol/message_codec.ts";
import { MsgType } from "../src/protocol/messages.ts";
import { initiateHandshake } from "../src/transport/handshake_io.ts";
import { TcpTransport } from "../src/transport/tcp.ts";
import { writeAll } from "../src/transport/transport.ts";
import { startServerChild } from "./server_child.ts";

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "50" },
    seconds: { type: "string", default: "10" },
    body: { type: "string", default: "60000" },
  },
});
const CONNECTIONS = Number(values.connections);

const dir = await Deno.makeTempDir({ prefix: "parley-echo-" });
const config = join(dir, "config.json");
await Deno.writeTextFile(
  config,
  JSON.stringify({
    accounts: { scrypt: { N: 1024, r: 8, p: 1 } },
    limits: { requestRate: 1_000_000, requestBurst: 1_000_000, maxConnectionsPerIp: 1000 },
  }),
);
const server = await startServerChild(config, join(dir, "data"));
const { port, rss } = server;
const before = rss();
let peak = before;
const sampler = setInterval(() => peak = Math.max(peak, rss()), 50);

const body = "p".repeat(Number(values.body));
const until = Date.now() + Number(values.seconds) * 1000;
let closed = 0;
await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const { keys } = await initiateHandshake(new TcpTransport(conn), 1024 * 1024);
  const sealer = new FrameSealer(keys.send);
  let id = 1;
  try {
    while (Date.now() < until) {
      await writeAll(conn, sealer.seal(encodeMessages([{ type: MsgType.PING, id: id++, body }])));
    }
  } catch {
    closed++; // the server closed it
  }
  conn.close();
}));
const during = peak;
clearInterval(sampler);
console.log(JSON.stringify({
  connections: CONNECTIONS,
  seconds: Number(values.seconds),
  rss_before_mb: Math.round(before / 1e6),
  rss_peak_mb: Math.round(during / 1e6),
  per_connection_mb: Number(((during - before) / CONNECTIONS / 1e6).toFixed(2)),
  closed_by_server: closed,
}));
await server.stop();
await Deno.remove(dir, { recursive: true });
