/**
 * A Link sends again, with the same id, a message the server failed to store: a cluster's store
 * fails for a moment while a NATS server dies, and the user should see a delay, not an error.
 */

import assert from "node:assert/strict";
import { Link } from "../../src/client/link.ts";
import { ParleyClient } from "../../src/client/client.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { routedKv } from "../helpers/kv.ts";
import { TestServer } from "../helpers/server.ts";

Deno.test("Link sends a message again, same id, after the server failed to store it", async () => {
  let failures = 0;
  // The server's store opens its KV file through Deno.openKv: wrap it while the server starts.
  const original = Object.getOwnPropertyDescriptor(Deno, "openKv")!;
  const openKv = Deno.openKv;
  Object.defineProperty(Deno, "openKv", {
    configurable: true,
    value: async (path?: string) =>
      routedKv(
        await openKv(path),
        (key) => key[0] === "inbox",
        (commit) => failures-- > 0 ? Promise.reject(new Error("store down")) : commit(),
      ),
  });
  let t: TestServer;
  try {
    t = await TestServer.start();
  } finally {
    Object.defineProperty(Deno, "openKv", original);
  }
  let link: Link | null = null;
  try {
    await (await t.user("bob")).logout(); // offline: his copy is committed at once
    const alice = await t.user("alice");
    link = new Link({ host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts }, {
      status: () => {},
      event: () => {},
      failedSendWaitsMs: [100, 100, 100],
    });
    link.open(alice);
    failures = 1;
    const receipt = await link.sendText({ user: "bob" }, "stored the second time");
    const bob = await t.connect();
    await bob.login("bob", "password-bob");
    const pass = (await bob.nextEvent(MsgType.PASS)).body as { id: Uint8Array; data: string };
    assert.equal(pass.data, "stored the second time");
    assert.deepEqual(pass.id, receipt.id);
    await bob.flush();
    await bob.logout();
    // Failing every time, it is given up and the caller told.
    failures = 1_000;
    await assert.rejects(link.sendText({ user: "bob" }, "never"), /failed to handle/);
    failures = 0;
  } finally {
    link?.close();
    await t.stop();
  }
});

// ParleyClient is imported for the client platform it installs.
void ParleyClient;

Deno.test("Link sends a long paste whole and in order: a message refused for the rate waits and goes again", async () => {
  const t = await TestServer.start({ limits: { requestRate: 20, requestBurst: 20 } });
  let link: Link | null = null;
  try {
    await (await t.user("bob")).logout();
    const alice = await t.user("alice");
    link = new Link({ host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts }, {
      status: () => {},
      event: () => {},
    });
    link.open(alice);
    // One after another, as the terminal client sends a paste: faster than 20 a second.
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i}`);
    for (const line of lines) await link.sendText({ user: "bob" }, line);
    const bob = await t.connect();
    await bob.login("bob", "password-bob");
    const got: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      got.push(((await bob.nextEvent(MsgType.PASS)).body as { data: string }).data);
    }
    assert.deepEqual(got, lines);
    await bob.flush();
    await bob.logout();
  } finally {
    link?.close();
    await t.stop();
  }
});
