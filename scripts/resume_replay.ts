/**
 * Measures what one resume token replayed in a loop makes the server send: a world backlog of
 * large messages, then RESUME after RESUME (a new connection each, no `world_after`) for a few
 * seconds. Prints the resumes done and the world backlog bytes they received.
 *
 *   deno run -A scripts/resume_replay.ts [--seconds 10] [--backlog 100] [--text 16000]
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { ParleyClient } from "../src/client/client.ts";
import { KnownHosts } from "../src/client/known_hosts.ts";
import { applyConfig, defaultConfig } from "../src/config/config.ts";
import { MsgType } from "../src/protocol/messages.ts";
import { silentLogger } from "../src/server/log.ts";
import { startServer } from "../src/server/server.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    backlog: { type: "string", default: "100" },
    text: { type: "string", default: "16000" },
  },
});
const dir = await Deno.makeTempDir({ prefix: "parley-replay-" });
const server = await startServer(
  applyConfig(defaultConfig(), {
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, "data"),
    accounts: { scrypt: { N: 1024, r: 8, p: 1 } },
    limits: { requestRate: 1_000_000, requestBurst: 1_000_000 },
    world: { backlog: Number(values.backlog) },
    crypto: { nativeAes: false },
  }, "resume_replay"),
  silentLogger,
);
const opts = {
  host: "127.0.0.1",
  port: server.addr.port,
  knownHosts: new KnownHosts(join(dir, "known_hosts")),
};
const alice = await ParleyClient.connect(opts);
await alice.register("alice", "password-alice");
await alice.login("alice", "password-alice");
const text = "w".repeat(Number(values.text));
for (let i = 0; i < Number(values.backlog); i++) await alice.sendText({ world: true }, text);
const mallory = await ParleyClient.connect(opts);
await mallory.register("mallory", "password-mallory");
await mallory.login("mallory", "password-mallory");
const token = mallory.token!;
mallory.close();

let resumes = 0, bytes = 0;
const until = performance.now() + Number(values.seconds) * 1000;
while (performance.now() < until) {
  const c = await ParleyClient.connect(opts);
  await c.resume(token);
  const init = (await c.nextEvent(MsgType.INITIALIZE)).body as { world: { data: string }[] };
  for (const m of init.world) bytes += m.data.length;
  resumes++;
  c.close();
}
console.log(JSON.stringify({
  seconds: Number(values.seconds),
  resumes,
  world_mib_received: Number((bytes / 1024 / 1024).toFixed(1)),
  world_kib_per_resume: Math.round(bytes / 1024 / resumes),
}));
alice.close();
await server.close();
await Deno.remove(dir, { recursive: true });
