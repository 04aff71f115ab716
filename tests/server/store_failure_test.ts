/** A real server whose store fails: the sender is told, and nothing is counted that is not stored. */

import assert from "node:assert/strict";
import { MsgType } from "../../src/protocol/messages.ts";
import { routedKv } from "../helpers/kv.ts";
import { TestServer } from "../helpers/server.ts";

Deno.test("a failed inbox commit: the sender gets an error, later replies keep their order", async () => {
  const failing = { on: false };
  // The server's store opens its KV file through Deno.openKv: wrap it while the server starts.
  const original = Object.getOwnPropertyDescriptor(Deno, "openKv")!;
  const openKv = Deno.openKv;
  Object.defineProperty(Deno, "openKv", {
    configurable: true,
    value: async (path?: string) =>
      routedKv(
        await openKv(path),
        (key) => key[0] === "inbox",
        (commit) => failing.on ? Promise.reject(new Error("disk full")) : commit(),
      ),
  });
  let t: TestServer;
  try {
    t = await TestServer.start();
  } finally {
    Object.defineProperty(Deno, "openKv", original);
  }
  try {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await bob.logout(); // offline: his copies are committed at once
    await alice.sendText({ user: "bob" }, "kept");
    failing.on = true;
    const order: string[] = [];
    const lost = alice.sendText({ user: "bob" }, "lost").then(
      () => order.push("SENT"),
      (e: Error) => order.push(`failed: ${e.message}`),
    );
    const ping = alice.ping().then(() => order.push("PONG"));
    await Promise.all([lost, ping]);
    failing.on = false;
    assert.deepEqual(order, ["failed: The server failed to handle this request", "PONG"]);
    await alice.sendText({ user: "bob" }, "kept too");
    // Bob finds the two messages that were stored, and only those.
    const back = await t.connect();
    await back.login("bob", "password-bob");
    const init = (await back.nextEvent(MsgType.INITIALIZE)).body as { pending: number };
    assert.equal(init.pending, 2);
    const texts = [];
    for (let i = 0; i < 2; i++) {
      texts.push(((await back.nextEvent(MsgType.PASS)).body as { data: string }).data);
    }
    assert.deepEqual(texts, ["kept", "kept too"]);
  } finally {
    await t.stop();
  }
});
