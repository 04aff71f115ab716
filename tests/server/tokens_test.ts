/**
 * Session kinds and resume tokens over a real TCP socket and a real KV file: one-shot sessions,
 * one token per device, rotation, reuse, LOGOUT everywhere and the CHANGE_PASSWORD race.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import type { ParleyClient } from "../../src/client/client.ts";
import { Link } from "../../src/client/link.ts";
import { join } from "node:path";
import { KV_FILE } from "../../src/store/kv_store.ts";
import { befriend } from "../helpers/friends.ts";
import { withServer } from "../helpers/server.ts";
import { rejects } from "../helpers/assert.ts";

/** True if a push of `type` arrives within `ms` (it is taken from the queue). */
async function arrives(c: ParleyClient, type: number, ms = 300): Promise<boolean> {
  try {
    await c.nextEvent(type, ms);
    return true;
  } catch {
    return false;
  }
}

Deno.test("a one-shot login neither kicks nor flickers the user's session, and gets no token", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await befriend(alice, "alice", bob, "bob");
    await alice.nextEvent(MsgType.NEW_FRIEND);

    const script = await t.connect({ oneShot: true });
    const lg = await script.login("alice", "password-alice");
    assert.deepEqual(lg, { username: "alice", token: null, expires: null });
    // INITIALIZE carries the limits and nothing else: no inbox, no presence, no backlog.
    const init = (await script.nextEvent(MsgType.INITIALIZE)).body as Record<string, unknown>;
    assert.deepEqual([init.friends, init.groups, init.world, init.pending], [[], [], [], 0]);
    assert.equal((init.limits as { max_text_bytes: number }).max_text_bytes, 16384);

    const sent = await script.sendText({ user: "bob" }, "build finished");
    assert.equal(sent.id.length, 16);
    assert.equal(
      ((await bob.nextEvent(MsgType.PASS)).body as { data: string }).data,
      "build finished",
    );
    // Alice is untouched and still the one online; the script is not listed.
    assert.ok(!alice.isClosed);
    assert.deepEqual((await bob.who()).users.sort(), ["alice", "bob"]);
    // A note to self from a script reaches the person's open session.
    await script.sendText({ user: "alice" }, "note to self");
    const note = (await alice.nextEvent(MsgType.PASS)).body as Record<string, unknown>;
    assert.deepEqual([note.source_username, note.data], ["alice", "note to self"]);
    // What belongs to the interactive session is refused.
    await rejects(
      script.changePassword("password-alice", "another one"),
      ErrorCode.NOT_INTERACTIVE,
    );
    const ack = await script.request(MsgType.ACK, 1);
    assert.equal((ack.body as { code: number }).code, ErrorCode.NOT_INTERACTIVE);
    // An interactive login elsewhere does not end the script either.
    const laptop = await t.connect();
    await laptop.login("alice", "password-alice");
    await alice.nextEvent(MsgType.KICK);
    assert.ok(await script.ping() >= 0);
    script.close();
    await script.closed;
    assert.equal(await arrives(bob, MsgType.FRIEND_OFFLINE), false, "bob saw alice go offline");
    assert.equal(await arrives(bob, MsgType.FRIEND_ONLINE), false, "bob saw alice come online");
    assert.ok(await laptop.ping() >= 0);
  }));

Deno.test("one device keeps one resume token however often it logs in; scripts leave none", () =>
  withServer(async (t) => {
    const device = new Uint8Array(32).fill(3);
    const tokens: Uint8Array[] = [];
    let last: ParleyClient | null = null;
    for (let i = 0; i < 20; i++) {
      last?.close();
      last = await t.connect({ deviceSecret: device });
      if (i === 0) await last.register("carol", "password-carol");
      tokens.push((await last.login("carol", "password-carol")).token!);
    }
    for (let i = 0; i < 20; i++) {
      const s = await t.connect({ oneShot: true });
      await s.login("carol", "password-carol");
      s.close();
    }
    // The store's families (one per device) as an operator's tool sees them.
    const kv = await Deno.openKv(join(t.dir, "data", KV_FILE));
    let families = 0;
    for await (const _ of kv.list({ prefix: ["user_token", "carol"] })) families++;
    kv.close();
    // 20 logins from one device and 20 scripts left one token, the device's latest.
    assert.equal(families, 1);
    assert.ok(await last!.ping() >= 0, "the scripts must not end the device's session");
    const probe = await t.connect();
    await rejects(probe.resume(tokens.at(-2)!), ErrorCode.BAD_TOKEN);
    assert.equal((await probe.resume(tokens.at(-1)!)).username, "carol");
  }));

Deno.test("RESUME rotates the token; an older one coming back ends the family and its session", () =>
  withServer(async (t) => {
    const owner = await t.user("dan");
    const leaked = owner.token!;
    // A thief resumes with the leaked token and then once more with the one it got.
    const thief1 = await t.connect();
    const t1 = (await thief1.resume(leaked)).token!;
    assert.notDeepEqual(t1, leaked);
    await owner.nextEvent(MsgType.KICK);
    const thief2 = await t.connect();
    const t2 = (await thief2.resume(t1)).token!;
    // The owner comes back with the leaked token, now two replacements old: reuse.
    const back = await t.connect();
    const e = await rejects(back.resume(leaked), ErrorCode.BAD_TOKEN);
    assert.match(e.message, /used again/);
    // The thief's live session ends, and its newest token is dead.
    const kick = await thief2.nextEvent(MsgType.KICK);
    assert.match((kick.body as { reason: string }).reason, /used twice/);
    const again = await t.connect();
    await rejects(again.resume(t2), ErrorCode.BAD_TOKEN);
    // The owner logs in with the password and is unaffected from then on.
    assert.equal((await again.login("dan", "password-dan")).username, "dan");
  }));

Deno.test("a resume token ends at its expiry on the server's clock, which LG_OK tells", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const days = t.config.accounts.tokenTtlDays;
      const c = await t.connect();
      await c.register("eve", "password-eve");
      const lg = await c.login("eve", "password-eve");
      const life = days * 24 * 60 * 60 * 1000;
      assert.equal(
        lg.expires?.getTime(),
        clock.wall() + life,
        "the expiry is on the server's clock",
      );
      c.close();
      clock.advance(life - 1);
      const early = await t.connect();
      const resumed = await early.resume(lg.token!);
      assert.equal(resumed.expires?.getTime(), lg.expires?.getTime(), "rotation keeps the expiry");
      early.close();
      clock.advance(1);
      await rejects((await t.connect()).resume(resumed.token!), ErrorCode.BAD_TOKEN);
    },
    {},
    { clock },
  );
});

Deno.test("a session kicked by another device loses its token; the same device reconnecting keeps it", () =>
  withServer(async (t) => {
    const phone = await t.connect({ deviceSecret: new Uint8Array(32).fill(1) });
    await phone.register("erin", "password-erin");
    const phoneToken = (await phone.login("erin", "password-erin")).token!;
    // The phone's connection went half-open; it reconnects with its token: same family.
    const phone2 = await t.connect();
    const phoneToken2 = (await phone2.resume(phoneToken)).token!;
    await phone.nextEvent(MsgType.KICK);
    // Another device logs in: the phone's family ends with the kick.
    const laptop = await t.connect({ deviceSecret: new Uint8Array(32).fill(2) });
    await laptop.login("erin", "password-erin");
    await phone2.nextEvent(MsgType.KICK);
    const probe = await t.connect();
    await rejects(probe.resume(phoneToken2), ErrorCode.BAD_TOKEN);
  }));

Deno.test("LOGOUT everywhere revokes every device's token and ends the account's other sessions", () =>
  withServer(async (t) => {
    const a = await t.connect({ deviceSecret: new Uint8Array(32).fill(1) });
    await a.register("fay", "password-fay");
    const aToken = (await a.login("fay", "password-fay")).token!;
    const b = await t.connect({ deviceSecret: new Uint8Array(32).fill(2) });
    await b.login("fay", "password-fay"); // kicks a
    const script = await t.connect({ oneShot: true });
    await script.login("fay", "password-fay");
    const bToken = b.token!;
    await b.logout(true);
    const kick = await script.nextEvent(MsgType.KICK);
    assert.match((kick.body as { reason: string }).reason, /logged out everywhere/);
    const probe = await t.connect();
    await rejects(probe.resume(aToken), ErrorCode.BAD_TOKEN);
    await rejects(probe.resume(bToken), ErrorCode.BAD_TOKEN);
    // A plain LOGOUT still ends only its own token.
    const c = await t.connect({ deviceSecret: new Uint8Array(32).fill(3) });
    const cToken = (await c.login("fay", "password-fay")).token!;
    const d = await t.connect({ deviceSecret: new Uint8Array(32).fill(4) });
    const dToken = (await d.login("fay", "password-fay")).token!; // kicks c: its token ends
    await d.logout();
    await rejects(probe.resume(dToken), ErrorCode.BAD_TOKEN);
    await rejects(probe.resume(cToken), ErrorCode.BAD_TOKEN);
  }));

Deno.test("a RESUME during CHANGE_PASSWORD does not survive it", () =>
  withServer(async (t) => {
    const victim = await t.user("gus", "old password");
    const leaked = victim.token!;
    // The change hashes twice (the old password, the new one); the thief resumes meanwhile.
    const changing = victim.changePassword("old password", "new password").catch((e) => e);
    const thief = await t.connect();
    const stolen = await thief.resume(leaked);
    assert.equal(stolen.username, "gus");
    await changing;
    // The thief's session ends and no token from before the change works.
    const kick = await thief.nextEvent(MsgType.KICK);
    assert.match((kick.body as { reason: string }).reason, /password of "gus" was changed/);
    const probe = await t.connect();
    await rejects(probe.resume(stolen.token!), ErrorCode.BAD_TOKEN);
    await rejects(probe.resume(leaked), ErrorCode.BAD_TOKEN);
    assert.equal((await probe.login("gus", "new password")).username, "gus");
  }, { accounts: { scrypt: { N: 16384, r: 8, p: 1 } } }));

Deno.test("LOGIN with a bad session kind or device id is refused", () =>
  withServer(async (t) => {
    await (await t.connect()).register("hal", "password-hal");
    // An unknown kind is refused like a wrong password: the connection may try again.
    const kind = await t.connect();
    const refused = await kind.request(MsgType.LOGIN, ["hal", "password-hal", { kind: "bot" }]);
    assert.equal(refused.type, MsgType.LG_FAIL);
    assert.equal((refused.body as { code: number }).code, ErrorCode.BAD_REQUEST);
    assert.equal((await kind.request(MsgType.LOGIN, ["hal", "password-hal"])).type, MsgType.LG_OK);
    // A device id of the wrong size breaks the schema: answered, then, as for any malformed
    // request before login, the connection ends.
    const device = await t.connect();
    const bad: Value = ["hal", "password-hal", { device: new Uint8Array(3) }];
    const r0 = await device.request(MsgType.LOGIN, bad);
    assert.equal((r0.body as { code: number }).code, ErrorCode.BAD_REQUEST);
    await device.closed;
    // Version 1's two-element body still works, and its token does not rotate.
    const c = await t.connect();
    const v1 = await c.request(MsgType.LOGIN, ["hal", "password-hal"]);
    assert.equal(v1.type, MsgType.LG_OK);
    const token = (v1.body as { token: Uint8Array }).token;
    const other = await t.connect();
    const r = await other.request(MsgType.RESUME, token);
    assert.equal(r.type, MsgType.LG_OK);
    assert.equal((r.body as { token: unknown }).token, null);
  }));

Deno.test("a Link reconnects with the token each RESUME handed it, across two restarts", () =>
  withServer(async (t) => {
    const first = await t.user("ida");
    const original = first.token!;
    const statuses: string[] = [];
    const link = new Link({ host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts }, {
      status: (text) => statuses.push(text),
      event: () => {},
    });
    link.open(first);
    try {
      for (let i = 0; i < 2; i++) {
        await t.restart();
        // Waits for the reconnection; the message goes through the resumed session.
        await link.sendText({ world: true }, `after restart ${i}`);
      }
      const now = link.client!.token!;
      assert.notDeepEqual(now, original);
      assert.ok(statuses.includes("Reconnected."));
      // The token the link holds is the live one; the original, replaced twice, is reuse.
      const again = await t.connect();
      assert.equal((await again.resume(now)).username, "ida");
      const probe = await t.connect();
      await rejects(probe.resume(original), ErrorCode.BAD_TOKEN);
    } finally {
      link.close();
    }
  }));

Deno.test("a client whose rotated token was lost with the connection resumes once more with the old one", () =>
  withServer(async (t) => {
    const first = await t.user("jo");
    const t0 = first.token!;
    // The RESUME went through but its LG_OK never arrived: the client still holds t0.
    const lost = await t.connect();
    await lost.resume(t0);
    lost.close();
    const retry = await t.connect();
    const again = await retry.resume(t0);
    assert.equal(again.username, "jo");
    // From then on the chain goes on from the token this answer carried.
    const next = await t.connect();
    assert.equal((await next.resume(again.token!)).username, "jo");
  }));

Deno.test("one device's LOGOUT does not make another device's RESUME under way fail", () =>
  withServer(async (t) => {
    await (await t.connect()).register("kim", "password-kim");
    for (let i = 0; i < 5; i++) {
      const other = await t.connect();
      await other.login("kim", "password-kim");
      const token = other.token!;
      other.close();
      await other.closed;
      const leaving = await t.connect();
      await leaving.login("kim", "password-kim");
      const resuming = await t.connect();
      const [, resumed] = await Promise.allSettled([leaving.logout(), resuming.resume(token)]);
      assert.equal(
        resumed.status,
        "fulfilled",
        resumed.status === "rejected" ? String(resumed.reason) : "",
      );
      await resuming.logout();
    }
  }));
