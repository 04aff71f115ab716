/**
 * The operator's HTTP endpoint against a real server on loopback: /metrics counts what real
 * clients did and parses as strict exposition text, /healthz answers, and nothing listens
 * unless asked. The real CLI serves it too, and still stops on SIGTERM.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../../src/clock/clock.ts";
import { serveConfig } from "../../src/cli/serve.ts";
import { UsageError } from "../../src/terminal/usage.ts";
import { ConfigError, defaultConfig } from "../../src/config/config.ts";
import { ErrorCode, ParleyError } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { httpHandler } from "../../src/server/http.ts";
import { silentLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { ServerMetrics } from "../../src/server/metrics.ts";
import { VERSION } from "../../src/version.ts";
import { rejects } from "../helpers/assert.ts";
import { fastConfig, Output, ROOT, ServerProcess } from "../helpers/cli.ts";
import { type Family, parseExposition, sampleValue } from "../helpers/exposition.ts";
import { befriend } from "../helpers/friends.ts";
import { readUntilClosed } from "../helpers/raw.ts";
import { testConfig, type TestServer, withServer } from "../helpers/server.ts";

const EXPOSITION = "text/plain; version=0.0.4; charset=utf-8";
const HTTP_ON = { http: { enabled: true, port: 0 } };

type Scrape = Map<string, Family>;

function url(t: TestServer, path: string): string {
  assert.ok(t.server.http, "the HTTP endpoint is enabled");
  return `http://127.0.0.1:${t.server.http.port}${path}`;
}

async function scrape(t: TestServer): Promise<Scrape> {
  const res = await fetch(url(t, "/metrics"));
  const text = await res.text();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), EXPOSITION);
  return parseExposition(text);
}

/** A sample that must be there. */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  const v = sampleValue(s, name, labels);
  assert.ok(v !== undefined, `no sample ${name}${JSON.stringify(labels)}`);
  return v;
}

/** Every series of a counter family with its growth between two scrapes, as "label=value …". */
function growth(before: Scrape, after: Scrape, family: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of after.get(family)!.samples) {
    const moved = s.value - value(before, s.name, s.labels);
    if (moved !== 0) out[Object.values(s.labels).join("/") || "-"] = moved;
  }
  return out;
}

/** Random-looking bytes, for an image and a file. */
function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 17) & 0xff;
  return b;
}

Deno.test("/metrics counts messages, logins, failures and handshakes from real clients", () =>
  withServer(async (t) => {
    const before = await scrape(t);
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const carol = await t.user("carol");
    const dave = await t.user("dave");
    const erin = await t.connect();
    await erin.register("erin", "password-erin"); // never logs in: her messages wait

    // Private: text and an image to bob, text to erin (offline, so it is queued).
    await alice.sendText({ user: "bob" }, "hi bob");
    await alice.sendImage({ user: "bob" }, bytes(2000, 1), "dot.png");
    await alice.sendText({ user: "erin" }, "hi erin");
    assert.equal((await bob.nextEvent(MsgType.PASS)).type, MsgType.PASS);
    assert.equal((await bob.nextEvent(MsgType.PASS)).type, MsgType.PASS);

    // Group: carol writes to alice and bob.
    await befriend(alice, "alice", bob, "bob");
    await befriend(alice, "alice", carol, "carol");
    const g = await alice.createGroup("trip", ["bob", "carol"]);
    await carol.sendText({ group: g.group_id }, "packed?");
    for (const c of [alice, bob]) await c.nextEvent(MsgType.PASS);

    // World: everyone else online gets it.
    await alice.sendText({ world: true }, "hello world");
    for (const c of [bob, carol, dave]) await c.nextEvent(MsgType.PASS);

    // A file of three chunks (64 KiB each at most).
    const file = bytes(150_000, 2);
    const sending = alice.sendFile("bob", "notes.bin", file);
    const offer = (await bob.nextEvent(MsgType.FILE_INCOMING)).body as {
      transfer_id: number;
      size: number;
      sha256: Uint8Array;
    };
    await bob.acceptFile(offer, { write: () => Promise.resolve() });
    assert.equal((await sending).sha256Ok, true);

    // Failures: a wrong password, an unknown recipient, a bad resume token.
    const eve = await t.connect();
    await rejects(eve.login("alice", "not the password"), ErrorCode.WRONG_PASSWORD);
    await rejects(alice.sendText({ user: "nobody" }, "hello?"), ErrorCode.NO_SUCH_USER);
    await rejects(eve.resume(new Uint8Array(32)), ErrorCode.BAD_TOKEN);

    // A resume login from a second connection (it takes over dave's session).
    const daveAgain = await t.connect();
    await daveAgain.resume(dave.token!);

    // Garbage instead of a handshake; the server closes on it.
    const garbage = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    await garbage.write(new Uint8Array(64).fill(0x41));
    await readUntilClosed(garbage, 10_000);
    garbage.close();

    // Round trips after the last PASS: their ACKs (sent first) are handled by now.
    for (const c of [alice, bob, carol]) await c.ping();
    const after = await scrape(t);

    assert.deepEqual(growth(before, after, "parley_messages_in_total"), {
      "private/text": 2,
      "private/image": 1,
      "group/text": 1,
      "world/text": 1,
    });
    assert.deepEqual(growth(before, after, "parley_messages_out_total"), {
      "private/text": 1,
      "private/image": 1,
      "group/text": 2,
      "world/text": 3,
    });
    assert.deepEqual(growth(before, after, "parley_logins_total"), { password: 4, resume: 1 });
    assert.deepEqual(growth(before, after, "parley_login_failures_total"), {
      password: 1,
      resume: 1,
    });
    assert.deepEqual(growth(before, after, "parley_request_failures_total"), {
      NO_SUCH_USER: 1,
      WRONG_PASSWORD: 1,
      BAD_TOKEN: 1,
    });
    assert.deepEqual(growth(before, after, "parley_handshake_failures_total"), { "-": 1 });
    assert.deepEqual(growth(before, after, "parley_rate_limited_requests_total"), {});
    assert.deepEqual(growth(before, after, "parley_file_chunks_total"), { "-": 3 });
    assert.deepEqual(growth(before, after, "parley_file_bytes_total"), { "-": file.length });

    const commits = (s: Scrape) => value(s, "parley_kv_commit_seconds_count");
    assert.ok(commits(after) > commits(before), "commits were timed");
    assert.ok(value(after, "parley_kv_commit_seconds_sum") > 0);
    assert.equal(value(after, "parley_kv_commit_seconds_bucket", { le: "+Inf" }), commits(after));

    assert.equal(value(after, "parley_users_online"), 4); // alice, bob, carol, dave again
    assert.ok(value(after, "parley_connections") >= 4);
    assert.equal(value(after, "parley_queued_messages"), 1); // erin's
    assert.ok(value(after, "parley_queued_bytes") > 0);
    assert.ok(value(after, "parley_process_resident_memory_bytes") > 0);
    assert.ok(value(after, "parley_process_heap_used_bytes") > 0);
    assert.ok(value(after, "parley_uptime_seconds") >= value(before, "parley_uptime_seconds"));
    assert.equal(value(after, "parley_build_info", { version: VERSION }), 1);
    for (const f of after.values()) {
      assert.match(f.name, /^parley_/);
      assert.notEqual(f.help, "", `${f.name} has HELP`);
    }
  }, HTTP_ON));

Deno.test("/metrics counts requests refused by the rate limit, with their error code", () =>
  withServer(async (t) => {
    const alice = await t.user("alice"); // two requests of the burst of five
    const before = await scrape(t);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => alice.ping()));
    const limited = results.filter((r) =>
      r.status === "rejected" && r.reason instanceof ParleyError &&
      r.reason.code === ErrorCode.RATE_LIMITED
    ).length;
    assert.ok(limited > 0, "some pings were refused");
    const after = await scrape(t);
    assert.deepEqual(growth(before, after, "parley_rate_limited_requests_total"), { "-": limited });
    assert.deepEqual(growth(before, after, "parley_request_failures_total"), {
      RATE_LIMITED: limited,
    });
  }, { ...HTTP_ON, limits: { requestRate: 1, requestBurst: 5 } }));

Deno.test("/healthz answers 200 with status, version, uptime and connections; HEAD too", () =>
  withServer(async (t) => {
    await t.user("alice");
    const res = await fetch(url(t, "/healthz"));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^application\/json/);
    const body = await res.json();
    assert.deepEqual(Object.keys(body).sort(), [
      "connections",
      "status",
      "uptime_seconds",
      "version",
    ]);
    assert.equal(body.status, "ok");
    assert.equal(body.version, VERSION);
    assert.ok(Number.isInteger(body.uptime_seconds) && body.uptime_seconds >= 0);
    assert.equal(body.connections, 1);

    for (const path of ["/healthz", "/metrics"]) {
      const head = await fetch(url(t, path), { method: "HEAD" });
      assert.equal(head.status, 200, `HEAD ${path}`);
      assert.equal(await head.text(), "");
      const post = await fetch(url(t, path), { method: "POST", body: "x" });
      assert.equal(post.status, 405, `POST ${path}`);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      await post.body?.cancel();
    }
    const missing = await fetch(url(t, "/"));
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    assert.equal(
      (await fetch(url(t, "/metrics"), { method: "HEAD" })).headers.get("content-type"),
      EXPOSITION,
    );

    // Closing the server closes the endpoint.
    const port = t.server.http!.port;
    await t.server.close();
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }),
      Deno.errors.ConnectionRefused,
    );
  }, HTTP_ON));

Deno.test("/healthz answers 503 while shutting down or when the store fails", async () => {
  const base = { connections: () => 0, accepting: () => true, pingStore: () => Promise.resolve() };
  const ask = async (health: typeof base) => {
    const res = await httpHandler(new ServerMetrics(), health, silentLogger)(
      new Request("http://127.0.0.1/healthz"),
    );
    return { status: res.status, body: await res.json() };
  };
  assert.equal((await ask(base)).status, 200);
  const stopping = await ask({ ...base, accepting: () => false });
  assert.equal(stopping.status, 503);
  assert.equal(stopping.body.status, "shutting_down");
  const broken = await ask({ ...base, pingStore: () => Promise.reject(new Error("disk gone")) });
  assert.equal(broken.status, 503);
  assert.equal(broken.body.status, "store_unavailable");
});

Deno.test("the HTTP endpoint is off by default and binds nothing", async () => {
  const defaults = defaultConfig();
  assert.equal(defaults.http.enabled, false);
  assert.equal(defaults.http.host, "127.0.0.1");
  // Hold a port and point the disabled endpoint at it: starting must not try to bind it.
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (held.addr as Deno.NetAddr).port;
    await withServer((t) => {
      assert.equal(t.server.http, null);
      return Promise.resolve();
    }, { http: { port } });
  } finally {
    held.close();
  }
});

Deno.test("serve flags: --http turns the endpoint on, --http-host and --http-port imply it", async () => {
  assert.equal((await serveConfig([])).config.http.enabled, false);
  const endpoint = (c: { http: { enabled: boolean; host: string; port: number } }) => {
    const { enabled, host, port } = c.http;
    return { enabled, host, port };
  };
  assert.deepEqual(endpoint((await serveConfig(["--http"])).config), {
    enabled: true,
    host: "127.0.0.1",
    port: 9464,
  });
  assert.deepEqual(endpoint((await serveConfig(["--http-port", "0"])).config), {
    enabled: true,
    host: "127.0.0.1",
    port: 0,
  });
  assert.deepEqual((await serveConfig(["--http-host", "::1"])).config.http.host, "::1");
  await assert.rejects(serveConfig(["--http-port", "x"]), UsageError);
  await assert.rejects(serveConfig(["--http-port", "65536"]), ConfigError);
  await assert.rejects(serveConfig(["--http-host", " "]), ConfigError);
});

Deno.test("parley serve --http --http-port 0 serves /healthz and stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-http-" });
  const server = await ServerProcess.start(
    join(dir, "data"),
    await fastConfig(dir),
    0,
    ["--http", "--http-port", "0"],
  );
  try {
    const [, port] = await server.out.waitFor(/http\.listening addr=127\.0\.0\.1:(\d+)/);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, "ok");
    // /metrics names the AES-GCM implementation that the startup line names.
    const [, aes] = /server\.listening .*aes=(\S+)/.exec(server.out.text)!;
    const info = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
      .get("parley_aes_info")!.samples;
    assert.equal(info.length, 1);
    assert.equal(info[0].value, 1);
    assert.equal(info[0].labels.implementation, aes);
    if (aes === "openssl") {
      assert.match(info[0].labels.library, /libcrypto/);
      assert.match(info[0].labels.version, /^OpenSSL (1\.1\.1|3)\./);
    }
    const status = await server.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.match(server.out.text, /server\.stopped/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a taken HTTP port stops the start with AddrInUse and leaves nothing open", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-http-" });
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (held.addr as Deno.NetAddr).port;
    const config = testConfig(join(dir, "data"), { http: { enabled: true, port } });
    await assert.rejects(startServer(config, silentLogger), Deno.errors.AddrInUse);
  } finally {
    held.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Sends `request` over raw TCP and returns everything the server sent before it closed. */
async function rawHttp(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  } finally {
    conn.close();
  }
}

function contentLength(response: string): number {
  const m = /\r\ncontent-length: (\d+)\r\n/i.exec(response);
  assert.ok(m, `no content-length in ${JSON.stringify(response.slice(0, 300))}`);
  return Number(m[1]);
}

Deno.test("/metrics names the AES-GCM implementation in use (node:crypto for in-process servers)", () =>
  withServer(async (t) => {
    const s = await scrape(t);
    assert.equal(
      value(s, "parley_aes_info", { implementation: "node:crypto", library: "", version: "" }),
      1,
    );
    assert.equal(s.get("parley_aes_info")!.samples.length, 1);
  }, HTTP_ON));

Deno.test("HEAD gives the GET's content-length and no body, over raw HTTP/1.1", () =>
  withServer(async (t) => {
    const port = t.server.http!.port;
    for (const path of ["/healthz", "/metrics"]) {
      const get = await rawHttp(
        port,
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      const head = await rawHttp(
        port,
        `HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.ok(head.endsWith("\r\n\r\n"), `HEAD ${path} has no body`);
      const body = get.slice(get.indexOf("\r\n\r\n") + 4);
      assert.equal(contentLength(get), new TextEncoder().encode(body).length);
      if (path === "/healthz") assert.equal(contentLength(head), contentLength(get));
      // The metrics text moves between two scrapes (uptime, memory), but not by much.
      else assert.ok(Math.abs(contentLength(head) - contentLength(get)) < 200, path);
    }
    assert.match(await rawHttp(port, "BREW /healthz HTCPCP/1.0\r\n\r\n"), /^HTTP\/1\.1 400 /);
  }, HTTP_ON));

Deno.test("the HTTP endpoint caps its connections and closes half-sent requests at the deadline", () => {
  const clock = new ManualClock();
  return withServer(async (t) => {
    const port = t.server.http!.port;
    const { maxConnections, requestTimeoutMs } = t.config.http;
    const half = await Promise.all(Array.from({ length: maxConnections }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
      return conn;
    }));
    /** One more connection is closed at once, unanswered, while the half-sent ones hold every place. */
    const refused = async () => {
      const extra = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        assert.equal(await readUntilClosed(extra, 2000), 0);
      } finally {
        extra.close();
      }
    };
    try {
      await refused();
      clock.advance(requestTimeoutMs - 1);
      await refused();
      // The half-sent ones are closed at their deadline, not held.
      clock.advance(1);
      for (const conn of half) assert.equal(await readUntilClosed(conn, 5000), 0);
    } finally {
      for (const conn of half) {
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
    }
    // And the endpoint serves again.
    const res = await fetch(url(t, "/healthz"));
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }, {
    // Far beyond the test's own time: only the server's clock can bring the deadline.
    http: { enabled: true, port: 0, maxConnections: 4, requestTimeoutMs: 60_000 },
  }, { clock });
});

Deno.test("a server out of file descriptors logs failed accepts and serves again once some close", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-http-" });
  const config = join(dir, "config.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      accounts: { scrypt: { N: 1024, r: 8, p: 1 } },
      limits: { maxConnectionsPerIp: 1000 },
      http: { enabled: true, port: 0 },
    }),
  );
  // A small descriptor limit for the child alone, so that a few hundred connections exhaust it.
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n 128 && exec "$0" run --allow-all --quiet main.ts serve --host 127.0.0.1 --port 0 --data "$1" --config "$2"`,
      Deno.execPath(),
      join(dir, "data"),
      config,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = new Output(child.stdout);
  const err = new Output(child.stderr);
  const conns: Deno.Conn[] = [];
  try {
    const [, chatPort] = await out.waitFor(/server\.listening addr=127\.0\.0\.1:(\d+)/);
    const [, httpPort] = await out.waitFor(/http\.listening addr=127\.0\.0\.1:(\d+)/);
    // Chat connections that sit in the handshake hold a descriptor each until none is left.
    for (let i = 0; i < 200; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: Number(chatPort) }));
    }
    for (let i = 0; i < 20; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: Number(httpPort) }));
    }
    await out.waitFor(/accept_failed/);
    for (const c of conns.splice(0)) c.close();
    // Still running, and both listeners serve again.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
        status = res.status;
        await res.body?.cancel();
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(status, 200, `stdout:\n${out.text}\nstderr:\n${err.text}`);
    const chat = await Deno.connect({ hostname: "127.0.0.1", port: Number(chatPort) });
    chat.close();
  } finally {
    for (const c of conns) c.close();
    try {
      child.kill("SIGTERM");
    } catch {
      // Gone already (the failure this test looks for).
    }
    await child.status;
    await out.done;
    await err.done;
    await Deno.remove(dir, { recursive: true });
  }
});
