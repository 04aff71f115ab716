/** web.trustedProxies: behind a reverse proxy, limits count each client, not the proxy. */

import assert from "node:assert/strict";
import type { ParleyClient } from "../../src/client/client.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { ConnectionTable } from "../../src/server/connection_table.ts";
import { forwardedClient } from "../../src/server/web/web_listener.ts";
import { parseHead } from "../../src/server/web/http_head.ts";
import { dial } from "../../src/transport/websocket_client.ts";
import { RawSocket, withWebServer, wsUrl } from "./web_helpers.ts";

/**
 * Opens a socket once the proxy's own address has room again: a refused request keeps counting
 * under it until the server has closed it, and the cap here is 1.
 */
async function openAdmitted(port: number, headers: Record<string, string | null>) {
  for (let i = 0; i < 200; i++) {
    const opened = await RawSocket.open(port, headers);
    if (opened.socket.status !== 0) return opened;
    opened.socket.close();
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("never admitted");
}

const PROXY = { web: { trustedProxies: ["127.0.0.1"] }, limits: { maxConnectionsPerIp: 1 } };

Deno.test("through a trusted proxy, each X-Forwarded-For client has its own connection cap", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const a = await RawSocket.open(port, { "X-Forwarded-For": "203.0.113.9, 198.51.100.1" });
    const b = await RawSocket.open(port, { "X-Forwarded-For": "198.51.100.2" });
    try {
      // One each is allowed, although both came from the proxy's one address.
      assert.equal(a.socket.status, 101);
      assert.equal(b.socket.status, 101);
      // The last hop counts (the one the proxy added): 198.51.100.1 is at its cap.
      const again = await openAdmitted(port, { "X-Forwarded-For": "198.51.100.1" });
      assert.equal(again.socket.status, 503);
      again.socket.close();
      // A trusted proxy's request that names no client is refused.
      for (const xff of [null, "not-an-address", "198.51.100.3:443"]) {
        const none = await openAdmitted(port, { "X-Forwarded-For": xff });
        assert.equal(none.socket.status, 400, `X-Forwarded-For ${xff}`);
        none.socket.close();
      }
    } finally {
      a.socket.close();
      b.socket.close();
    }
  }, PROXY));

Deno.test("a trusted proxy's connections are not refused at accept by its own address's cap", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    // Two of the proxy's connections whose heads have not come yet (cap 1): they count under the
    // proxy until their heads name their clients, and must not shut the proxy's next one out.
    const pending = [
      await Deno.connect({ hostname: "127.0.0.1", port }),
      await Deno.connect({ hostname: "127.0.0.1", port }),
    ];
    try {
      await new Promise((r) => setTimeout(r, 50));
      const next = await RawSocket.open(port, { "X-Forwarded-For": "198.51.100.7" });
      assert.equal(next.socket.status, 101);
      next.socket.close();
    } finally {
      for (const conn of pending) conn.close();
    }
  }, PROXY));

Deno.test("X-Forwarded-For from an address that is not a trusted proxy counts for nothing", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const a = await RawSocket.open(port, { "X-Forwarded-For": "198.51.100.1" });
    assert.equal(a.socket.status, 101);
    // 127.0.0.1 holds its one connection: the next is closed at accept, whatever it claims.
    const b = await RawSocket.open(port, { "X-Forwarded-For": "198.51.100.2" });
    assert.equal(b.socket.status, 0);
    a.socket.close();
    b.socket.close();
  }, { web: { trustedProxies: ["10.0.0.1"] }, limits: { maxConnectionsPerIp: 1 } }));

Deno.test("through a trusted proxy, the registration budget counts each client's address", () =>
  withWebServer(async (t, web) => {
    const connect = (client: string) =>
      t.connect({
        dial: dial(wsUrl(web), {
          open: (url) =>
            new WebSocket(url, {
              headers: { origin: web.origin, "x-forwarded-for": client },
            } as never),
        }),
      });
    const one: ParleyClient = await connect("198.51.100.1");
    await one.register("ann", "password-ann");
    const two = await connect("198.51.100.2");
    await two.register("bob", "password-bob");
    const three = await connect("198.51.100.1");
    await assert.rejects(
      () => three.register("cid", "password-cid"),
      (e: Error & { code?: number }) =>
        e.code === ErrorCode.THROTTLED || /THROTTLED|hour/i.test(e.message),
    );
  }, {
    web: { trustedProxies: ["127.0.0.1"] },
    accounts: { registerPerIp: 1 },
    limits: { maxConnectionsPerIp: 10 },
  }));

Deno.test("ConnectionTable.moveTo() moves a connection's count to another key, unless it is full", () => {
  const table = new ConnectionTable<{ close(): void }>({
    maxConnections: 10,
    maxConnectionsPerIp: 1,
    ipv6PrefixBits: 64,
  });
  const a = { close() {} }, b = { close() {} };
  assert.ok(table.admit(a, "proxy"));
  assert.ok(table.moveTo(a, "client-1"));
  assert.equal(table.countFrom("proxy"), 0);
  assert.equal(table.countFrom("client-1"), 1);
  assert.ok(table.admit(b, "proxy"));
  assert.ok(!table.moveTo(b, "client-1"));
  assert.equal(table.countFrom("proxy"), 1, "a refused move changes nothing");
  table.release(a);
  table.release(b);
  assert.equal(table.size, 0);
});

Deno.test("forwardedClient() takes the last X-Forwarded-For entry, if it is an address", () => {
  const head = (xff: string) =>
    parseHead(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ${xff}\r\n\r\n`),
    );
  assert.equal(forwardedClient(head("1.2.3.4, 2001:db8::1")), "2001:db8::1");
  assert.equal(forwardedClient(head("1.2.3.4")), "1.2.3.4");
  assert.equal(forwardedClient(head("1.2.3.4, unknown")), null);
  assert.equal(forwardedClient(head("256.1.1.1")), null);
});
