/** Accounts over a real TCP socket and a real KV file: register, login, resume, logout, kick. */

import assert from "node:assert/strict";
import { ErrorCode, ParleyError } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { withServer } from "../helpers/server.ts";
import { rejects } from "../helpers/assert.ts";

Deno.test("register then login returns LG_OK with a resume token", () =>
  withServer(async (t) => {
    const c = await t.connect();
    assert.equal(await c.register("Alice", "correct horse"), "Alice");
    const me = await c.login("alice", "correct horse");
    assert.equal(me.username, "Alice");
    assert.equal(me.token?.length, 32);
    assert.ok(me.expires!.getTime() > Date.now() + 29 * 86_400_000);
  }));

Deno.test("register refuses a taken name whatever its case", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("bob", "password1");
    const reply = await c.request(MsgType.REGISTER, ["BOB", "password2"]);
    assert.equal(reply.type, MsgType.REG_FAIL);
    assert.equal((reply.body as { code: number }).code, ErrorCode.USERNAME_TAKEN);
    // The first account is untouched: its password still works, the second one does not.
    await c.login("bob", "password1");
    const other = await t.connect();
    await rejects(other.login("bob", "password2"), ErrorCode.WRONG_PASSWORD);
  }));

Deno.test("register refuses bad usernames and short passwords with clear errors", () =>
  withServer(async (t) => {
    const c = await t.connect();
    for (const name of ["a", "has space", "-dash", "x".repeat(33), "émile", ""]) {
      const e = await rejects(c.register(name, "long enough"), ErrorCode.BAD_USERNAME);
      assert.match(e.message, /Usernames/);
    }
    const e = await rejects(c.register("carol", "short"), ErrorCode.BAD_PASSWORD);
    assert.match(e.message, /at least 8 characters/);
    // Nothing was created by the failed attempts.
    await rejects(c.login("carol", "short"), ErrorCode.NO_SUCH_USER);
  }));

Deno.test("login with a wrong password gets LG_FAIL code 1 and no session", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("dave", "right password");
    const reply = await c.request(MsgType.LOGIN, ["dave", "wrong password"]);
    assert.equal(reply.type, MsgType.LG_FAIL);
    assert.deepEqual(reply.body, { code: ErrorCode.WRONG_PASSWORD, message: "Wrong password" });
    await rejects(c.logout(), ErrorCode.NOT_LOGGED_IN);
  }));

Deno.test("login of an unknown user gets LG_FAIL code 0", () =>
  withServer(async (t) => {
    const c = await t.connect();
    const reply = await c.request(MsgType.LOGIN, ["nobody", "whatever1"]);
    assert.equal(reply.type, MsgType.LG_FAIL);
    assert.equal((reply.body as { code: number }).code, ErrorCode.NO_SUCH_USER);
  }));

Deno.test("requests before login are refused with GENERAL_ERROR NOT_LOGGED_IN, and the connection closed", () =>
  withServer(async (t) => {
    for (
      const [type, body] of [[MsgType.LOGOUT, null], [MsgType.CHANGE_PASSWORD, ["a", "b"]]] as const
    ) {
      const c = await t.connect();
      assert.ok(await c.ping() >= 0, "PING needs no login");
      const reply = await c.request(type, body as never);
      assert.equal(reply.type, MsgType.GENERAL_ERROR);
      assert.equal((reply.body as { code: number }).code, ErrorCode.NOT_LOGGED_IN);
      assert.match((reply.body as { message: string }).message, /closing the connection/);
      await c.closed;
    }
  }));

Deno.test("unknown message types and malformed bodies get GENERAL_ERROR; logged in, the connection stays", () =>
  withServer(async (t) => {
    const c = await t.user("erin");
    const unknown = await c.request(9999, null);
    assert.equal(unknown.type, MsgType.GENERAL_ERROR);
    assert.equal((unknown.body as { code: number }).code, ErrorCode.UNKNOWN_TYPE);
    const bad = await c.request(MsgType.ADD_FRIEND, { user: "x" });
    assert.equal(bad.type, MsgType.STATUS_ADD_FRIEND);
    assert.equal((bad.body as { code: number }).code, ErrorCode.BAD_REQUEST);
    assert.match((bad.body as { message: string }).message, /ADD_FRIEND/);
    assert.ok(await c.ping() >= 0);
    // Before login either one is answered, then the connection is closed.
    for (const [type, body] of [[9999, null], [MsgType.LOGIN, { user: "x" }]] as const) {
      const anonymous = await t.connect();
      const reply = await anonymous.request(type, body);
      assert.equal(
        (reply.body as { code: number }).code,
        type === 9999 ? ErrorCode.UNKNOWN_TYPE : ErrorCode.BAD_REQUEST,
      );
      assert.match((reply.body as { message: string }).message, /closing the connection/);
      await anonymous.closed;
    }
  }));

Deno.test("a second login of the same user kicks the first session", () =>
  withServer(async (t) => {
    const first = await t.user("frank");
    const second = await t.connect();
    await second.login("frank", "password-frank");
    const kick = await first.nextEvent(MsgType.KICK);
    assert.match((kick.body as { reason: string }).reason, /logged in from another place/);
    assert.match(await first.closed, /Kicked/);
    assert.ok(first.isClosed);
    // The new session is the live one.
    assert.ok(await second.ping() >= 0);
    await second.logout();
  }));

Deno.test("a second LOGIN on a logged-in connection is refused", () =>
  withServer(async (t) => {
    const c = await t.user("grace");
    await rejects(c.login("grace", "password-grace"), ErrorCode.ALREADY_LOGGED_IN);
    assert.ok(await c.ping() >= 0);
  }));

Deno.test("after a server restart the client reconnects with its resume token, no password", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("grace", "password1");
    const issued = await c.login("grace", "password1");
    await t.restart();
    assert.ok(c.isClosed);
    const again = await c.reconnect();
    t.clients.push(again);
    assert.ok(!again.isClosed);
    // RESUME replaced the token (section 8.3): the client keeps the new one.
    assert.equal(again.token?.length, 32);
    assert.notDeepEqual(again.token, issued.token);
    // The resumed session is logged in: LOGOUT is accepted.
    await again.logout();
    // A resume reply names the user, a new token and the family's unchanged expiry.
    const third = await t.connect();
    await assert.rejects(third.resume(issued.token!), ParleyError);
    const fresh = await third.login("GRACE", "password1");
    const fourth = await t.connect();
    const resumed = await fourth.resume(fresh.token!);
    assert.equal(resumed.username, "grace");
    assert.deepEqual(resumed.expires, fresh.expires);
    assert.notDeepEqual(resumed.token, fresh.token);
  }));

Deno.test("logout revokes the session's resume token", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("heidi", "password1");
    const { token } = await c.login("heidi", "password1");
    await c.logout();
    const other = await t.connect();
    await rejects(other.resume(token!), ErrorCode.BAD_TOKEN);
    await rejects(other.resume(new Uint8Array(32)), ErrorCode.BAD_TOKEN);
    // The connection can log in again after logging out.
    await c.login("heidi", "password1");
  }));

Deno.test("changing the password revokes every resume token and issues a fresh one", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("ivan", "old password");
    const phone = await (await t.connect()).login("ivan", "old password");
    const laptop = await c.login("ivan", "old password");
    await rejects(c.changePassword("not it at all", "new password"), ErrorCode.WRONG_PASSWORD);
    await rejects(c.changePassword("old password", "short"), ErrorCode.BAD_PASSWORD);
    const fresh = await c.changePassword("old password", "new password");
    const other = await t.connect();
    await rejects(other.resume(phone.token!), ErrorCode.BAD_TOKEN);
    await rejects(other.resume(laptop.token!), ErrorCode.BAD_TOKEN);
    await rejects(other.login("ivan", "old password"), ErrorCode.WRONG_PASSWORD);
    assert.equal((await other.resume(fresh.token!)).username, "ivan");
  }));

Deno.test("logout names only the session's own user", () =>
  withServer(async (t) => {
    const judy = await t.user("judy");
    await t.user("mallory");
    const reply = await judy.request(MsgType.LOGOUT, "mallory");
    assert.equal(reply.type, MsgType.GENERAL_ERROR);
    assert.equal((reply.body as { code: number }).code, ErrorCode.BAD_REQUEST);
    // Judy is still logged in, and so is mallory.
    await judy.logout();
  }));

Deno.test("users survive a server restart", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("Kim", "password1");
    await t.restart();
    const again = await t.connect();
    assert.equal((await again.login("kim", "password1")).username, "Kim");
    await rejects(again.register("KIM", "password2"), ErrorCode.USERNAME_TAKEN);
  }));

Deno.test("several requests in flight are answered in order, each with its own id", () =>
  withServer(async (t) => {
    const c = await t.connect();
    const replies = await Promise.all([
      c.request(MsgType.PING, 1),
      c.register("leo", "password1"),
      c.request(MsgType.PING, 2),
      c.login("leo", "password1"),
      c.request(MsgType.PING, 3),
    ]);
    assert.deepEqual(replies[0].body, 1);
    assert.deepEqual(replies[2].body, 2);
    assert.deepEqual(replies[4].body, 3);
    assert.equal((replies[3] as { username: string }).username, "leo");
  }));
