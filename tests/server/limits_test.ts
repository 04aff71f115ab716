/** Connection-level limits: frames before login, the login deadline, keepalive, connection caps. */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { keepaliveTick } from "../../src/server/keepalive.ts";
import { RawClient, readUntilClosed } from "../helpers/raw.ts";
import { rejects } from "../helpers/assert.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("before login a frame above preLoginFrameBytes closes the connection; after login it is fine", () =>
  withServer(async (t) => {
    const anonymous = await RawClient.connect(t.port);
    await anonymous.send(
      anonymous.frame([{ type: MsgType.PING, id: 1, body: new Uint8Array(8000) }]),
    );
    assert.equal(
      await anonymous.receive(),
      null,
      "a big frame before login must close the connection",
    );
    anonymous.close();

    const c = await t.user("alice");
    const reply = await c.request(MsgType.PING, new Uint8Array(8000));
    assert.equal(reply.type, MsgType.PONG);
  }, { limits: { preLoginFrameBytes: 4096 } }));

Deno.test("a connection that does not log in in time is told and closed; a logged-in one stays", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const lurker = await t.connect();
      assert.ok(await lurker.ping() >= 0, "the server's session exists before the clock moves");
      const member = await t.user("alice");
      const limits = t.config.limits;
      clock.advance(limits.loginTimeoutMs - keepaliveTick(limits));
      assert.ok(await lurker.ping() >= 0, "open before the deadline");
      clock.advance(2 * keepaliveTick(limits));
      const notice = (await lurker.nextEvent(MsgType.GENERAL_ERROR, 5000)).body as {
        code: number;
        message: string;
      };
      assert.equal(notice.code, ErrorCode.NOT_LOGGED_IN);
      assert.match(notice.message, /No login within/);
      await lurker.closed;
      clock.advance(limits.loginTimeoutMs + 100);
      assert.ok(await member.ping() >= 0);
    },
    { limits: { loginTimeoutMs: 300 } },
    { clock },
  );
});

Deno.test("a silent peer gets PING and is closed when it does not answer; a live client stays", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const limits = t.config.limits;
      const live = await t.user("alice");
      const mute = await RawClient.connect(t.port);
      // An answer first: the server's session (and its keepalive) exists before the clock moves.
      await mute.send(mute.frame([{ type: MsgType.PING, id: 1, body: null }]));
      assert.equal((await mute.receive())?.[0].type, MsgType.PONG);
      // The raw client never answers: first a PING arrives, then the connection closes.
      clock.advance(limits.pingIntervalMs + keepaliveTick(limits));
      const first = await mute.receive(3000);
      assert.equal(first?.[0].type, MsgType.PING);
      assert.ok(first![0].id > 0, "a server PING carries an id to echo");
      // The live client got its PING too; once this answer is back the server has read its PONG.
      assert.ok(await live.ping() >= 0);
      clock.advance(limits.pingTimeoutMs);
      assert.equal(await readUntilClosed(mute.conn, 3000), 0);
      mute.close();
      assert.ok(!live.isClosed);
      assert.ok(await live.ping() >= 0);
    },
    { limits: { pingIntervalMs: 200, pingTimeoutMs: 200 } },
    { clock },
  );
});

Deno.test("connections beyond the per-IP cap are refused while others keep working", () =>
  withServer(async (t) => {
    const first = await t.connect();
    await t.connect();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    assert.equal(await readUntilClosed(conn, 3000), 0, "the third connection is closed at once");
    conn.close();
    assert.ok(await first.ping() >= 0);
  }, { limits: { maxConnectionsPerIp: 2 } }));

Deno.test("a request flood gets RATE_LIMITED first and a disconnect when it goes on", () =>
  withServer(async (t) => {
    const c = await t.user("alice");
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => c.request(MsgType.PING, i)),
    );
    const limited = burst.filter((m) => m.type === MsgType.GENERAL_ERROR);
    assert.ok(limited.length >= 1, "some of the burst is refused");
    assert.equal((limited[0].body as { code: number }).code, ErrorCode.RATE_LIMITED);
    assert.match((limited[0].body as { message: string }).message, /Too many requests/);
    assert.equal(burst[0].type, MsgType.PONG, "the first requests pass");
    // Keep flooding: the server gives up on this connection.
    for (let i = 0; i < 40; i++) void c.request(MsgType.PING, i).catch(() => {});
    const bye = (await c.nextEvent(MsgType.GENERAL_ERROR, 5000)).body as { message: string };
    assert.match(bye.message, /Disconnected for sending too many requests/);
    await c.closed;
    // Others are unaffected.
    const other = await t.user("bob");
    assert.ok(await other.ping() >= 0);
  }, { limits: { requestRate: 5, requestBurst: 10 } }));

Deno.test("failed logins slow down further attempts for that name and address", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const setup = await t.connect();
      await setup.register("alice", "right password");
      const c = await t.connect();
      for (let i = 0; i < 2; i++) {
        await rejects(c.login("alice", "wrong password"), ErrorCode.WRONG_PASSWORD);
      }
      await rejects(c.login("alice", "wrong password"), ErrorCode.WRONG_PASSWORD);
      // Past the free attempts even the right password waits, from any connection.
      const e = await rejects(c.login("alice", "right password"), ErrorCode.THROTTLED);
      assert.match(e.message, /Too many failed logins; try again in 1 s/);
      const other = await t.connect();
      await rejects(other.login("alice", "right password"), ErrorCode.THROTTLED);
      clock.advance(299);
      await rejects(other.login("alice", "right password"), ErrorCode.THROTTLED);
      clock.advance(1);
      assert.equal((await other.login("alice", "right password")).username, "alice");
    },
    { accounts: { loginFreeFailures: 2, loginDelayMs: 300 } },
    { clock },
  );
});

Deno.test("the login deadline counts from the last logout, and a rate-limited ADD_FRIEND says success false", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const c = await t.user("alice");
      await t.user("bob");
      clock.advance(400); // older than the deadline, but logged in
      await c.logout();
      // Past the deadline counted from the connection's start, within it counted from the logout.
      clock.advance(keepaliveTick(t.config.limits));
      await c.login("alice", "password-alice"); // not cut off for having logged out
      assert.ok(await c.ping() >= 0);
      const burst = await Promise.all(
        Array.from({ length: 15 }, () => c.request(MsgType.ADD_FRIEND, "bob")),
      );
      const limited = burst.find((m) =>
        (m.body as { code?: number }).code === ErrorCode.RATE_LIMITED
      );
      assert.ok(limited, "some ADD_FRIEND was rate limited");
      assert.equal(limited.type, MsgType.STATUS_ADD_FRIEND);
      assert.equal((limited.body as { success: boolean }).success, false);
    },
    { limits: { loginTimeoutMs: 300, requestRate: 5, requestBurst: 10 } },
    { clock },
  );
});
