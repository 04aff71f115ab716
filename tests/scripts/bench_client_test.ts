/** The bench's lean client against a real server: delivery, answers, and a lost connection. */

import assert from "node:assert/strict";
import { BenchClient } from "../../scripts/bench_client.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { until } from "../helpers/assert.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("the bench's lean client sends, receives, acknowledges, and fails fast once kicked", () =>
  withServer(async (t) => {
    (await t.user("alice")).close();
    (await t.user("bob")).close();
    const alice = await BenchClient.connect("127.0.0.1", t.port);
    const bob = await BenchClient.connect("127.0.0.1", t.port);
    await alice.login("alice", "password-alice");
    await bob.login("bob", "password-bob");
    const got: string[] = [];
    const answers: boolean[] = [];
    bob.onPass = (body) => got.push(body.data as string);
    alice.onSent = (ok) => answers.push(ok);
    for (const text of ["one", "two", "three"]) alice.send({ user: "bob" }, text);
    await until(() => got.length === 3, "three messages at bob");
    // SENT comes once bob's ACKs made each copy durable.
    await until(() => answers.length === 3, "three SENT answers");
    assert.deepEqual(got, ["one", "two", "three"]);
    assert.deepEqual(answers, [true, true, true]);
    // Acknowledged: nothing is waiting for bob any more.
    const back = await t.connect();
    await back.login("bob", "password-bob");
    assert.equal(
      ((await back.nextEvent(MsgType.INITIALIZE)).body as { pending: number }).pending,
      0,
    );
    // Alice logs in elsewhere: this connection is kicked, and a send on it fails at once.
    await t.connect().then((c) => c.login("alice", "password-alice"));
    let kicked = false;
    void alice.closed.then(() => kicked = true);
    await until(() => kicked, "alice's first connection to close");
    alice.send({ user: "bob" }, "too late");
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(answers, [true, true, true, false]);
    bob.close();
    await bob.closed;
  }));
