import assert from "node:assert/strict";
import { MsgType } from "../../src/protocol/messages.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("a second account logged in on the same connection has its messages acknowledged", () =>
  withServer(async (t) => {
    for (const n of ["alice", "bob", "carol"]) {
      const c = await t.connect();
      await c.register(n, `password-${n}`);
      c.close();
    }
    const carol = await t.connect();
    await carol.login("carol", "password-carol");
    for (let i = 0; i < 5; i++) await carol.sendText({ user: "alice" }, `a${i}`);
    await carol.sendText({ user: "bob" }, "b0");
    const c = await t.connect();
    await c.login("alice", "password-alice");
    for (let i = 0; i < 5; i++) await c.nextEvent(MsgType.PASS); // seqs 1 to 5
    await c.logout();
    await c.login("bob", "password-bob");
    assert.equal(((await c.nextEvent(MsgType.PASS)).body as { seq: number }).seq, 1);
    await c.logout(); // sends bob's ACK first
    c.close();
    const d = await t.connect();
    await d.login("bob", "password-bob");
    await assert.rejects(d.nextEvent(MsgType.PASS, 300), "bob's message was acknowledged once");
    d.close();
    carol.close();
  }));
