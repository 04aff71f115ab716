/** Connection-level limits: frames before login, the login deadline, keepalive, connection caps. */

import assert from "node:assert/strict";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { RawClient, readUntilClosed } from "../helpers/raw.ts";
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

Deno.test("a connection that does not log in in time is told and closed; a logged-in one stays", () =>
  withServer(async (t) => {
    const lurker = await t.connect();
    const member = await t.user("alice");
    const notice = (await lurker.nextEvent(MsgType.GENERAL_ERROR, 5000)).body as {
      code: number;
      message: string;
    };
    assert.equal(notice.code, ErrorCode.NOT_LOGGED_IN);
    assert.match(notice.message, /No login within/);
    await lurker.closed;
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(await member.ping() >= 0);
  }, { limits: { loginTimeoutMs: 300 } }));

Deno.test("a silent peer gets PING and is closed when it does not answer; a live client answers", () =>
  withServer(async (t) => {
    const live = await t.user("alice");
    const mute = await RawClient.connect(t.port);
    const started = Date.now();
    // The raw client never answers: first a PING arrives, then the connection closes.
    const first = await mute.receive(3000);
    assert.equal(first?.[0].type, MsgType.PING);
    assert.ok(first![0].id > 0, "a server PING carries an id to echo");
    assert.equal(await readUntilClosed(mute.conn, 3000), 0);
    assert.ok(Date.now() - started >= 300, "closed only after interval plus timeout");
    mute.close();
    // The library client answered every PING and is still connected.
    assert.ok(!live.isClosed);
    assert.ok(await live.ping() >= 0);
  }, { limits: { pingIntervalMs: 200, pingTimeoutMs: 200 } }));

Deno.test("connections beyond the per-IP cap are refused while others keep working", () =>
  withServer(async (t) => {
    const first = await t.connect();
    await t.connect();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    assert.equal(await readUntilClosed(conn, 3000), 0, "the third connection is closed at once");
    conn.close();
    assert.ok(await first.ping() >= 0);
  }, { limits: { maxConnectionsPerIp: 2 } }));
