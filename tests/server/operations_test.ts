/**
 * Starting and running a server as an operator meets it: a busy port named before anything is
 * made, session ids that do not repeat across restarts, rejected frames counted, the KV files
 * private, a loose data dir reported, and IPv6 peers counted by prefix.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../../src/clock/clock.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { createLogger } from "../../src/server/log.ts";
import { peerKey } from "../../src/server/peer_key.ts";
import { startServer } from "../../src/server/server.ts";
import { KV_FILE } from "../../src/store/kv_store.ts";
import { fastConfig, ServerProcess } from "../helpers/cli.ts";
import { parseExposition, sampleValue } from "../helpers/exposition.ts";
import { RawClient, readUntilClosed } from "../helpers/raw.ts";
import { testConfig, TestServer, withServer } from "../helpers/server.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

Deno.test("a busy port is refused with its address before the data dir or key is made", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-ops-" });
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (held.addr as Deno.NetAddr).port;
    const data = join(dir, "data");
    const error = await startServer(testConfig(data, { port }), createLogger({ write: () => {} }))
      .then(() => null, (e) => e);
    assert.ok(error instanceof Deno.errors.AddrInUse, String(error));
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(await exists(data), false, "nothing was made in the data dir");
  } finally {
    held.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("session ids in the log do not start again after a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-ops-" });
  const config = await fastConfig(dir);
  const firstSession = async (): Promise<number> => {
    const server = await ServerProcess.start(join(dir, "data"), config, 0, [
      "--log-level",
      "debug",
    ]);
    try {
      const client = await RawClient.connect(server.port);
      const [, id] = await server.out.waitFor(/session\.open session=(\d+)/);
      client.close();
      return Number(id);
    } finally {
      await server.stop();
    }
  };
  try {
    const first = await firstSession();
    const second = await firstSession();
    assert.ok(Number.isSafeInteger(second));
    assert.ok(second > first, `session ${second} after a restart, ${first} before`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an oversize frame is counted in parley_frames_rejected_total", () =>
  withServer(async (t) => {
    const client = await RawClient.connect(t.port);
    // A length header far above the pre-login limit: refused before anything is read.
    await client.send(new Uint8Array([0x7f, 0xff, 0xff, 0xff]));
    assert.equal(await readUntilClosed(client.conn, 2000), 0);
    client.close();
    const res = await fetch(`http://127.0.0.1:${t.server.http!.port}/metrics`);
    const scrape = parseExposition(await res.text());
    assert.equal(sampleValue(scrape, "parley_frames_rejected_total", { reason: "size" }), 1);
    assert.equal(sampleValue(scrape, "parley_frames_rejected_total", { reason: "auth" }), 0);
  }, { http: { enabled: true, port: 0 } }));

Deno.test("the KV file and its -wal and -shm are 0600; a loose data dir is warned of", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-ops-" });
  const data = join(dir, "data");
  await Deno.mkdir(data);
  await Deno.chmod(data, 0o755);
  const lines: string[] = [];
  const server = await startServer(testConfig(data), createLogger({ write: (l) => lines.push(l) }));
  try {
    assert.ok(lines.some((l) => /WARN +data_dir\.exposed .*mode=0755/.test(l)), lines.join("\n"));
    for (const suffix of ["", "-wal", "-shm"]) {
      const path = join(data, KV_FILE + suffix);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, `${KV_FILE}${suffix}`);
    }
  } finally {
    await server.close();
  }
  // A store made 0644 by an older version is made private at the next start; a 0700 dir is quiet.
  for (const suffix of ["", "-wal", "-shm"]) {
    if (await exists(join(data, KV_FILE + suffix))) {
      await Deno.chmod(join(data, KV_FILE + suffix), 0o644);
    }
  }
  await Deno.chmod(data, 0o700);
  lines.length = 0;
  const again = await startServer(testConfig(data), createLogger({ write: (l) => lines.push(l) }));
  try {
    assert.equal(lines.filter((l) => l.includes("data_dir.exposed")).length, 0);
    assert.equal((await Deno.stat(join(data, KV_FILE))).mode! & 0o777, 0o600);
  } finally {
    await again.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("peerKey() counts an IPv6 peer by its prefix and an IPv4 peer by its address", () => {
  assert.equal(peerKey("203.0.113.9", 64), "203.0.113.9");
  assert.equal(peerKey("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::/64");
  assert.equal(peerKey("2001:db8:1:2:ffff::1", 64), "2001:db8:1:2::/64");
  assert.equal(peerKey("2001:DB8:1:2::9%eth0", 64), "2001:db8:1:2::/64");
  assert.equal(peerKey("2001:db8:1:2:3:4:5:6", 48), "2001:db8:1::/48");
  assert.equal(peerKey("2001:db8:1:2:3:4:5:6", 56), "2001:db8:1::/56");
  assert.equal(peerKey("2001:db8:1:2ff:3:4:5:6", 56), "2001:db8:1:200::/56");
  assert.equal(peerKey("::1", 128), "::1/128");
  assert.equal(peerKey("::1", 64), "::/64");
  assert.equal(peerKey("::ffff:198.51.100.7", 64), "198.51.100.7");
  assert.equal(peerKey("[fe80::1]", 64), "fe80::/64");
  assert.throws(() => peerKey("::1", 0), RangeError);
});

Deno.test("parley serve under -A gives up native code (ffi and run) and still serves", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-ops-" });
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir), 0, [], ["-A"]);
  try {
    assert.match(server.out.text, /server\.listening .*native_code=given_up/);
    const client = await RawClient.connect(server.port);
    client.close();
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shutdown ends on the process's time while a reply waits on a stopped clock", async () => {
  const clock = new ManualClock();
  const t = await TestServer.start({}, { clock });
  try {
    const alice = await t.user("alice");
    const bob = await t.connect({ autoAck: false });
    await bob.register("bob", "password-bob");
    await bob.login("bob", "password-bob");
    // Bob holds the message unacknowledged: Alice's SENT waits for the deferred commit, which
    // waits for a clock that the test never moves.
    const sent = alice.sendText({ user: "bob" }, "hello").catch(() => {});
    await bob.nextEvent(MsgType.PASS);
    const started = performance.now();
    await t.server.close();
    assert.ok(performance.now() - started < 4000, "close() did not wait for the stopped clock");
    await sent;
  } finally {
    for (const c of t.clients) c.close();
    await Deno.remove(t.dir, { recursive: true }).catch(() => {});
  }
});
