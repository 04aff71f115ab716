/** The `web` settings: defaults, flags, checks, the startup line, binding, and check-config. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { serveConfig } from "../../src/cli/serve.ts";
import { applyConfig, ConfigError, defaultConfig } from "../../src/config/config.ts";
import { Listeners } from "../../src/server/listeners.ts";
import { createLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { MemoryAssets } from "../../src/server/web/assets.ts";
import { UsageError } from "../../src/terminal/usage.ts";
import { parley } from "../helpers/cli.ts";
import { testConfig } from "../helpers/server.ts";
import { PLACEHOLDER_FILES } from "./web_helpers.ts";

Deno.test("web is off by default, on loopback, without TLS or extra origins", () => {
  const { web } = defaultConfig();
  assert.deepEqual(web, {
    enabled: false,
    host: "127.0.0.1",
    port: 8080,
    tls: null,
    origins: [],
    alternates: [],
    trustedProxies: [],
    headTimeoutMs: 10000,
  });
});

Deno.test("serve's --web flags turn the listener on and set its address and TLS files", async () => {
  assert.equal((await serveConfig([])).config.web.enabled, false);
  assert.equal((await serveConfig(["--web"])).config.web.enabled, true);
  const { web } = (await serveConfig([
    "--web-host",
    "0.0.0.0",
    "--web-port",
    "8443",
    "--web-cert",
    "/etc/parley/cert.pem",
    "--web-key",
    "/etc/parley/key.pem",
  ])).config;
  assert.deepEqual(
    { enabled: web.enabled, host: web.host, port: web.port, tls: web.tls },
    {
      enabled: true,
      host: "0.0.0.0",
      port: 8443,
      tls: { cert: "/etc/parley/cert.pem", key: "/etc/parley/key.pem" },
    },
  );
  await assert.rejects(serveConfig(["--web-port", "x"]), UsageError);
  await assert.rejects(serveConfig(["--web-port", "65536"]), ConfigError);
  await assert.rejects(
    serveConfig(["--web-cert", "c.pem"]),
    /--web-cert and --web-key go together/,
  );
  await assert.rejects(serveConfig(["--web-host", ""]), /"web.host" must name an address/);
});

Deno.test("web.tls, web.origins and web.alternates are checked in a sentence naming the setting", () => {
  const base = defaultConfig();
  const ok = applyConfig(base, {
    web: { tls: { cert: "c.pem", key: "k.pem" }, origins: ["https://chat.example.org"] },
  }, "test");
  assert.deepEqual(ok.web.tls, { cert: "c.pem", key: "k.pem" });
  assert.deepEqual(ok.web.origins, ["https://chat.example.org"]);
  const nodes = ["wss://node2.example.org/ws", "ws://127.0.0.1:8081/ws"];
  assert.deepEqual(applyConfig(base, { web: { alternates: nodes } }, "test").web.alternates, nodes);
  const proxies = applyConfig(base, { web: { trustedProxies: ["127.0.0.1", "::1"] } }, "test");
  assert.deepEqual(proxies.web.trustedProxies, ["127.0.0.1", "::1"]);
  // And back to null from a file that set it.
  assert.equal(applyConfig(ok, { web: { tls: null } }, "test").web.tls, null);
  const bad: [unknown, RegExp][] = [
    [{ tls: "c.pem" }, /"web.tls" must be null or/],
    [{ tls: { cert: "c.pem" } }, /"web.tls" must be null or/],
    [{ tls: { cert: "c.pem", key: 3 } }, /"web.tls" must be null or/],
    [{ origins: "https://a.example" }, /"web.origins" must be a list/],
    [{ origins: ["https://a.example/"] }, /"web.origins" entries must be origins/],
    [{ origins: ["https://A.example"] }, /"web.origins" entries must be origins/],
    [{ origins: ["https://a.example:443"] }, /"web.origins" entries must be origins/],
    [{ origins: ["ftp://a.example"] }, /"web.origins" entries must be origins/],
    [{ alternates: "wss://b.example/ws" }, /"web.alternates" must list WebSocket URLs/],
    [{ alternates: ["https://b.example/ws"] }, /"web.alternates" must list WebSocket URLs/],
    [{ alternates: ["wss://b.example"] }, /"web.alternates" must list WebSocket URLs/],
    [{ alternates: ["wss://b.example/ws?x=1"] }, /"web.alternates" must list WebSocket URLs/],
    [{ alternates: ["wss://B.example/ws"] }, /"web.alternates" must list WebSocket URLs/],
    [{ alternates: [7] }, /"web.alternates" must list WebSocket URLs/],
    [{ headTimeoutMs: 10 }, /"web.headTimeoutMs" must be a whole number from 100/],
    [{ trustedProxies: "127.0.0.1" }, /"web.trustedProxies" must be a list of IP addresses/],
    [{ trustedProxies: ["localhost"] }, /"web.trustedProxies" must be a list of IP addresses/],
    [{ trustedProxies: ["127.0.0.1:80"] }, /"web.trustedProxies" must be a list of IP addresses/],
  ];
  for (const [web, pattern] of bad) {
    assert.throws(
      () => applyConfig(base, { web }, 'Config file "x"'),
      pattern,
      JSON.stringify(web),
    );
  }
});

Deno.test("server.listening names the web address, and says why browsers refuse plain HTTP off loopback", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-web-line-" });
  try {
    for (const host of ["127.0.0.1", "0.0.0.0"]) {
      const lines: string[] = [];
      const config = testConfig(join(dir, host), { web: { enabled: true, host, port: 0 } });
      const server = await startServer(config, createLogger({ write: (l) => lines.push(l) }), {
        webAssets: MemoryAssets.of(PLACEHOLDER_FILES),
      });
      await server.close();
      const line = lines.find((l) => l.includes("server.listening"))!;
      assert.ok(server.web?.startsWith(`http://${host}:`), server.web ?? "no web address");
      assert.ok(line.includes(`web=${server.web}`), line);
      if (host === "127.0.0.1") assert.doesNotMatch(line, /web_note/);
      else assert.match(line, /web_note=".*WebCrypto.*web.tls.*reverse proxy/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Listeners.open() refuses a taken web port in a sentence and lets the other ports go", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const webPort = (taken.addr as Deno.NetAddr).port;
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const chatPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const web = { enabled: true, host: "127.0.0.1", port: webPort, tls: null };
  try {
    assert.throws(
      () =>
        Listeners.open({
          host: "127.0.0.1",
          port: chatPort,
          http: { enabled: false, host: "127.0.0.1", port: 0 },
          web,
        }),
      new RegExp(
        `^AddrInUse: Cannot listen on 127\\.0\\.0\\.1:${webPort} \\(web\\): another process`,
      ),
    );
    assert.throws(
      () =>
        Listeners.open({
          host: "127.0.0.1",
          port: chatPort,
          http: { enabled: false, host: "127.0.0.1", port: 0 },
          web: { ...web, port: 0, tls: { cert: "/nonexistent/cert.pem", key: "/k.pem" } },
        }),
      /Cannot read web.tls.cert "\/nonexistent\/cert.pem"/,
    );
  } finally {
    taken.close();
  }
  Deno.listen({ hostname: "127.0.0.1", port: chatPort }).close();
});

Deno.test("serve --check-config describes the web listener; unreadable TLS files exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-web-check-" });
  try {
    const run = async (args: string[]) => {
      const out = await parley(["serve", "--check-config", "--data", join(dir, "data"), ...args])
        .output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const off = await run([]);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /web\s+off/);
    const local = await run(["--web", "--web-port", "8081"]);
    assert.match(local.stdout, /web\s+http:\/\/127\.0\.0\.1:8081\/\n/);
    const open = await run(["--web-host", "0.0.0.0"]);
    assert.match(open.stdout, /web\s+http:\/\/0\.0\.0\.0:8080\/; browsers refuse/);
    const missing = await run([
      "--web-cert",
      join(dir, "no.pem"),
      "--web-key",
      join(dir, "no.pem"),
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Cannot read web.tls.cert ".*no.pem"/);
    const half = await run(["--web-cert", join(dir, "no.pem")]);
    assert.equal(half.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
