/** A connection's end, whatever it was, gives its slot back (ConnectionLifecycle over real TCP). */

import assert from "node:assert/strict";
import type { ParleyClient } from "../../src/client/client.ts";
import { type TestServer, withServer } from "../helpers/server.ts";

/** A client that gets in within `ms`, trying again while the only slot is still taken. */
async function connectWithin(t: TestServer, ms: number): Promise<ParleyClient> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await t.connect();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`No slot within ${ms} ms`, { cause: e });
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

Deno.test("lifecycle: a logged-in connection that ends frees its per-address slot", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    alice.close();
    const next = await connectWithin(t, 3000);
    assert.ok(await next.ping() >= 0);
  }, { limits: { maxConnectionsPerIp: 1 } }));

Deno.test("lifecycle: a connection that fails its handshake frees its per-address slot", () =>
  withServer(async (t) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    await conn.write(new Uint8Array(64).fill(0xee));
    // The server closes it: a handshake it cannot read.
    const buf = new Uint8Array(256);
    while ((await conn.read(buf).catch(() => null)) !== null);
    conn.close();
    const next = await connectWithin(t, 3000);
    assert.ok(await next.ping() >= 0);
  }, { limits: { maxConnectionsPerIp: 1 } }));
