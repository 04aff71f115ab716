/**
 * Every message costs: malformed ones, ACKs, traffic before login. An anonymous connection that
 * misbehaves is closed, and one frame cannot cost unbounded decoding work.
 */

import assert from "node:assert/strict";
import { ErrorCode } from "../../src/protocol/errors.ts";
import type { Message } from "../../src/protocol/message_codec.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { encodeValue, Tag } from "../../src/protocol/value.ts";
import { MAX_FRAME_VALUES } from "../../src/server/dispatch.ts";
import { RawClient, receiveAll } from "../helpers/raw.ts";
import { withServer } from "../helpers/server.ts";

function code(m: Message): number | undefined {
  return (m.body as { code?: number } | null)?.code;
}

function frames(raw: RawClient, n: number, message: (i: number) => Message): Uint8Array {
  const parts = Array.from({ length: n }, (_, i) => raw.frame([message(i)]));
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("before login an ACK or FILE_ACK flood gets one NOT_LOGGED_IN and the connection is closed", () =>
  withServer(async (t) => {
    for (const type of [MsgType.ACK, MsgType.FILE_ACK]) {
      const raw = await RawClient.connect(t.port);
      const body = type === MsgType.ACK ? 1 : { transfer_id: 1, received: 0 };
      await raw.send(frames(raw, 200, () => ({ type, id: 0, body })));
      const got = await receiveAll(raw);
      raw.close();
      assert.equal(got.length, 1, `${got.length} answers to 200 messages before login`);
      assert.equal(code(got[0]), ErrorCode.NOT_LOGGED_IN);
      assert.match((got[0].body as { message: string }).message, /closing the connection/);
    }
    const c = await t.user("alice");
    assert.ok(await c.ping() >= 0);
  }));

Deno.test("before login a PING flood gets the pre-login burst, one refusal, the notice, the close", () =>
  withServer(async (t) => {
    const raw = await RawClient.connect(t.port);
    await raw.send(frames(raw, 100, (i) => ({ type: MsgType.PING, id: i + 1, body: null })));
    const got = await receiveAll(raw);
    raw.close();
    assert.deepEqual(
      got.map((m) => m.type === MsgType.PONG ? "PONG" : code(m)),
      [...Array(4).fill("PONG"), ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED],
    );
    assert.equal(got.at(-1)!.id, 0, "the last is the notice");
  }, { limits: { preLoginRequestRate: 1, preLoginRequestBurst: 4 } }));

Deno.test("a logged-in flood of malformed ACKs is metered and cut off", () =>
  withServer(async (t) => {
    const raw = await RawClient.loggedIn(t.port, "alice");
    // The flow budget is 20 times the request budget: 100 a second, 200 at once.
    await raw.send(frames(raw, 2000, () => ({ type: MsgType.ACK, id: 0, body: "x" })));
    const got = await receiveAll(raw);
    raw.close();
    const refused = got.filter((m) => code(m) === ErrorCode.RATE_LIMITED && m.id === 0);
    assert.ok(refused.length >= 2, "refused, then the notice");
    assert.match((got.at(-1)!.body as { message: string }).message, /Disconnected/);
    assert.ok(got.length < 600, `${got.length} answers to 2000 ACKs`);
  }, { limits: { requestRate: 5, requestBurst: 10 } }));

Deno.test("malformed messages cost a token each: a logged-in stream of them is refused, then cut off", () =>
  withServer(async (t) => {
    const raw = await RawClient.loggedIn(t.port, "alice");
    // type PING, id, then a value header claiming bytes that are not there.
    const bad = (id: number) =>
      raw.sealer.seal(new Uint8Array([0, 0, 0, 13, 0, 0, 0, id, Tag.STR, 0, 0, 0, 100]));
    const all = [];
    for (let id = 1; id <= 60; id++) all.push(bad(id));
    for (const f of all) await raw.send(f);
    const got = await receiveAll(raw);
    raw.close();
    assert.equal(code(got[0]), ErrorCode.BAD_REQUEST);
    assert.ok(got.some((m) => code(m) === ErrorCode.RATE_LIMITED && m.id !== 0));
    assert.match((got.at(-1)!.body as { message: string }).message, /Disconnected/);
  }, { limits: { requestRate: 5, requestBurst: 10 } }));

Deno.test("a frame holding a dict of 419k keys is refused after MAX_FRAME_VALUES values", () =>
  withServer(async (t) => {
    const raw = await RawClient.loggedIn(t.port, "alice");
    const keys = 419_000;
    const body = new Uint8Array(5 + keys * 10);
    body[0] = Tag.DICT;
    new DataView(body.buffer).setUint32(1, keys * 10);
    const nul = encodeValue(null);
    for (let i = 0, at = 5; i < keys; i++, at += 10) {
      body[at] = 4;
      body.set(new TextEncoder().encode(i.toString(36).padStart(4, "0")), at + 1);
      body.set(nul, at + 5);
    }
    const plaintext = new Uint8Array(8 + body.length);
    new DataView(plaintext.buffer).setUint32(0, MsgType.PING);
    new DataView(plaintext.buffer).setUint32(4, 7);
    plaintext.set(body, 8);
    const started = performance.now();
    await raw.send(raw.sealer.seal(plaintext));
    const [reply] = (await raw.receive())!;
    const ms = performance.now() - started;
    assert.equal(reply.id, 7);
    assert.equal(code(reply), ErrorCode.BAD_REQUEST);
    assert.match(
      (reply.body as { message: string }).message,
      new RegExp(`More than ${MAX_FRAME_VALUES} values`),
    );
    console.log(`419k-key dict answered in ${ms.toFixed(0)} ms`);
    // The connection stays, and the cost was charged: the next request waits for tokens.
    await raw.send(raw.frame([{ type: MsgType.PING, id: 8, body: null }]));
    const [next] = (await raw.receive())!;
    assert.equal(code(next), ErrorCode.RATE_LIMITED);
    raw.close();
  }, { limits: { requestRate: 1, requestBurst: 200 } }));

Deno.test("after a LOGOUT, late ACKs get NOT_LOGGED_IN and the connection stays", () =>
  withServer(async (t) => {
    const raw = await RawClient.loggedIn(t.port, "alice");
    // A client acknowledges what arrived before its LOGOUT after the LOGOUT's OK: an honest race.
    const late = Array.from({ length: 40 }, (_, i) => ({ type: MsgType.ACK, id: 10 + i, body: i }));
    await raw.send(raw.frame([{ type: MsgType.LOGOUT, id: 2, body: null }, ...late]));
    await raw.send(raw.frame([{ type: MsgType.PING, id: 99, body: null }]));
    const got: Message[] = [];
    while (!got.some((m) => m.id === 99)) {
      const frame = await raw.receive(5000);
      assert.ok(frame, `closed after ${got.length} answers: ${JSON.stringify(got.at(-1))}`);
      got.push(...frame);
    }
    assert.equal(got.find((m) => m.id === 2)?.type, MsgType.OK);
    const acks = got.filter((m) => m.id >= 10 && m.id < 50);
    assert.equal(acks.length, 40);
    assert.ok(acks.every((m) => code(m) === ErrorCode.NOT_LOGGED_IN));
    assert.equal(got.find((m) => m.id === 99)?.type, MsgType.PONG);
    raw.close();
  }));
