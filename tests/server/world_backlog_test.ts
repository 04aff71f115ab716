/**
 * The world backlog in INITIALIZE: settings that could not fit in a frame are refused, a
 * backlog stored under larger limits is cut to fit (newest kept) instead of breaking login, and
 * a RESUME gets only the world messages the client has not had.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { WORLD_REPLAY_MS } from "../../src/server/presence.ts";
import { applyConfig, ConfigError, defaultConfig } from "../../src/config/config.ts";
import type { ParleyClient } from "../../src/client/client.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import { withServer } from "../helpers/server.ts";

type Body = Record<string, Value>;

async function worldAtLogin(client: ParleyClient): Promise<string[]> {
  const init = (await client.nextEvent(MsgType.INITIALIZE)).body as Body;
  return (init.world as Body[]).map((m) => m.data as string);
}

Deno.test("a world backlog that cannot fit in INITIALIZE's frame is refused, naming the most", () => {
  assert.throws(
    () => applyConfig(defaultConfig(), { world: { backlog: 10_000 } }, "test"),
    (e: Error) => e instanceof ConfigError && /"world\.backlog".* at most 126$/.test(e.message),
  );
  assert.throws(
    () => applyConfig(defaultConfig(), { world: { backlog: 300 } }, "test"),
    ConfigError,
  );
  assert.equal(
    applyConfig(defaultConfig(), { world: { backlog: 126 } }, "test").world.backlog,
    126,
  );
  // Shorter texts leave room for more.
  const small = applyConfig(defaultConfig(), {
    world: { backlog: 1000 },
    limits: { maxTextBytes: 1024 },
  }, "test");
  assert.equal(small.world.backlog, 1000);
});

Deno.test("a backlog stored under larger limits is cut to fit the frame: login still works", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const texts = Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(16_000, "w"));
    for (const text of texts) await alice.sendText({ world: true }, text);
    await t.closeClients();
    // The operator lowers the limits: 16 KB texts no longer fit ten to a frame of 128 KiB.
    t.config = applyConfig(t.config, {
      limits: { maxFrameBytes: 128 * 1024, maxTextBytes: 4096, maxImageBytes: 64 * 1024 },
    }, "test");
    await t.restart();
    const bob = await t.user("bob");
    const world = await worldAtLogin(bob);
    // Half the frame (64 KiB) holds the newest four.
    assert.deepEqual(world.map((x) => x[0]), ["6", "7", "8", "9"]);
    assert.ok(await bob.ping() >= 0);
  }, { world: { backlog: 10 } }));

Deno.test("RESUME with world_after gets only later world messages; a replayed RESUME gets only new ones", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    assert.deepEqual(await worldAtLogin(bob), []);
    for (let i = 1; i <= 5; i++) await alice.sendText({ world: true }, `w${i}`);
    const [, , third] = [
      await bob.nextEvent(MsgType.PASS),
      await bob.nextEvent(MsgType.PASS),
      await bob.nextEvent(MsgType.PASS),
    ];
    const token = bob.token!;
    bob.close();

    // The client has up to w3: it gets w4 and w5 only.
    const phone = await t.connect();
    await phone.resume(token, (third.body as Body).id as Uint8Array);
    assert.deepEqual(await worldAtLogin(phone), ["w4", "w5"]);
    phone.close();

    // Without a cursor, moments after the last INITIALIZE: only what came since, which is
    // nothing, and then only the new one. A token replayed in a loop gets no backlog twice.
    const again = await t.connect();
    await again.resume(token);
    assert.deepEqual(await worldAtLogin(again), []);
    again.close();
    await alice.sendText({ world: true }, "w6");
    const replay = await t.connect();
    await replay.resume(token);
    assert.deepEqual(await worldAtLogin(replay), ["w6"]);
    // A password login is a new device: it gets the whole backlog.
    const laptop = await t.connect();
    await laptop.login("bob", "password-bob");
    assert.deepEqual(await worldAtLogin(laptop), ["w1", "w2", "w3", "w4", "w5", "w6"]);
  }));

Deno.test("a RESUME without a cursor gets the whole backlog again once the replay window has passed on the server's clock", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const alice = await t.user("alice");
      await alice.sendText({ world: true }, "w1");
      await alice.sendText({ world: true }, "w2");
      const bob = await t.user("bob");
      assert.deepEqual(await worldAtLogin(bob), ["w1", "w2"]);
      let token = bob.token!;
      bob.close();
      /** What a cursor-less RESUME with the newest token gets. */
      const resumed = async () => {
        const c = await t.connect();
        token = (await c.resume(token)).token!;
        const world = await worldAtLogin(c);
        c.close();
        return world;
      };
      clock.advance(WORLD_REPLAY_MS - 1);
      assert.deepEqual(await resumed(), [], "within the window: nothing twice");
      clock.advance(WORLD_REPLAY_MS);
      assert.deepEqual(await resumed(), ["w1", "w2"], "past it: the whole backlog");
    },
    {},
    { clock },
  );
});

Deno.test("a RESUME that names its newest world message gets what follows, even right after a login", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const sent = [];
    for (const text of ["m1", "m2", "m3"]) sent.push(await alice.sendText({ world: true }, text));
    // bob's INITIALIZE carried m1..m3; say the link dropped and the client had only seen m1.
    const bob = await t.user("bob");
    assert.deepEqual(await worldAtLogin(bob), ["m1", "m2", "m3"]);
    const token = bob.token!;
    bob.close();
    const again = await t.connect();
    await again.resume(token, sent[0].id);
    assert.deepEqual(await worldAtLogin(again), ["m2", "m3"]);
  }));
