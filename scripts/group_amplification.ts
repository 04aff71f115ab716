/**
 * Measures what ten 48 KiB images to a group of 500 cost the store (issue 18.7), and how long a
 * bystander's private message to an offline user waits for SENT behind twenty more.
 *
 *   deno run -A scripts/group_amplification.ts
 *
 * Prints one JSON line: the data dir's growth (MiB, and as a multiple of the bytes sent), the ten
 * sends' time, and the bystander's SENT delay. A server runs in this process on a fresh data dir;
 * 498 of the members are written straight into the store before it starts.
 */

import { join } from "node:path";
import { ParleyClient } from "../src/client/client.ts";
import { KnownHosts } from "../src/client/known_hosts.ts";
import { applyConfig, defaultConfig } from "../src/config/config.ts";
import { silentLogger } from "../src/server/log.ts";
import { startServer } from "../src/server/server.ts";
import { openKvStore } from "../src/store/kv_store.ts";

const IMAGE_BYTES = 48 * 1024;
const dir = await Deno.makeTempDir({ prefix: "parley-amplification-" });
const dataDir = join(dir, "data");
const scrypt = { N: 1024, r: 8, p: 1 };
const store = await openKvStore(dataDir);
const names = Array.from({ length: 498 }, (_, i) => `m${i}`);
const hash = {
  alg: "scrypt" as const,
  ...scrypt,
  salt: new Uint8Array(16),
  hash: new Uint8Array(32),
};
for (const name of names) await store.users.create({ name, password: hash, created: new Date() });
await store.close();

const config = applyConfig(defaultConfig(), {
  host: "127.0.0.1",
  port: 0,
  dataDir,
  accounts: { scrypt },
  limits: { requestRate: 1_000_000, requestBurst: 1_000_000 },
  // The members are strangers to alice: added at once, not invited.
  groups: { inviteNeedsConsent: false },
}, "amplification");
const server = await startServer(config, silentLogger);
const knownHosts = new KnownHosts(join(dir, "known_hosts"));
const clients: ParleyClient[] = [];
async function user(name: string): Promise<ParleyClient> {
  const c = await ParleyClient.connect({ host: "127.0.0.1", port: server.addr.port, knownHosts });
  clients.push(c);
  await c.register(name, `password-${name}`);
  await c.login(name, `password-${name}`);
  return c;
}

try {
  const alice = await user("alice");
  const bystander = await user("bystander");
  await user("friend");
  const group = await alice.createGroup("everyone", [...names, "friend"]);
  const dirBytes = async () => {
    let n = 0;
    for await (const e of Deno.readDir(dataDir)) {
      if (e.isFile) n += (await Deno.stat(join(dataDir, e.name))).size;
    }
    return n;
  };
  const image = (seed: number) =>
    crypto.getRandomValues(new Uint8Array(IMAGE_BYTES)).map((b) => b ^ seed);
  const before = await dirBytes();
  let started = performance.now();
  for (let i = 0; i < 10; i++) await alice.sendImage({ group: group.group_id }, image(i));
  const tenMs = performance.now() - started;
  const grown = await dirBytes() - before;
  // Twenty more in flight; then a private message to an offline user, which needs a commit.
  const flood = Array.from(
    { length: 20 },
    (_, i) => alice.sendImage({ group: group.group_id }, image(100 + i)),
  );
  await new Promise((r) => setTimeout(r, 300));
  started = performance.now();
  await bystander.sendText({ user: "m0" }, "hello?");
  const bystanderMs = performance.now() - started;
  await Promise.allSettled(flood);
  console.log(JSON.stringify({
    members: group.group_members.length,
    sentMiB: +(10 * IMAGE_BYTES / 1048576).toFixed(2),
    grownMiB: +(grown / 1048576).toFixed(2),
    amplification: +(grown / (10 * IMAGE_BYTES)).toFixed(1),
    tenSendsMs: Math.round(tenMs),
    bystanderSentMs: Math.round(bystanderMs),
  }));
} finally {
  for (const c of clients) c.close();
  await server.close();
  await Deno.remove(dir, { recursive: true });
}
