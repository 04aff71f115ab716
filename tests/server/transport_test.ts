/**
 * The encrypted transport against a real server: bad frames close only their own connection,
 * stalled handshakes are dropped, unknown versions are refused in words.
 */

import assert from "node:assert/strict";
import { ParleyClient } from "../../src/client/client.ts";
import { CLIENT_HELLO_BYTES } from "../../src/crypto/handshake.ts";
import { HandshakeError } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { writeAll } from "../../src/transport/transport.ts";
import { RawClient, readUntilClosed } from "../helpers/raw.ts";
import { withServer } from "../helpers/server.ts";

const ping = (id: number) => ({ type: MsgType.PING, id, body: id });

Deno.test("a well-formed frame with several messages gets every reply", () =>
  withServer(async (t) => {
    const raw = await RawClient.connect(t.port);
    await raw.send(raw.frame([ping(1), ping(2), ping(3)]));
    const replies = (await raw.receive())!;
    assert.deepEqual(replies.map((m) => [m.type, m.id, m.body]), [
      [MsgType.PONG, 1, 1],
      [MsgType.PONG, 2, 2],
      [MsgType.PONG, 3, 3],
    ]);
    raw.close();
  }));

Deno.test("replies to frames that arrive together leave together, in one frame", () =>
  withServer(async (t) => {
    const raw = await RawClient.connect(t.port);
    const a = raw.frame([ping(1)]);
    const b = raw.frame([ping(2), ping(3)]);
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    await raw.send(both);
    const replies = (await raw.receive())!;
    assert.deepEqual(replies.map((m) => m.id), [1, 2, 3]);
    raw.close();
  }));

Deno.test("replies of every size, over many turns and two connections, keep their bytes and order", () =>
  withServer(async (t) => {
    // Some turns' replies run past the 32 KiB at which a frame is cut, and the two connections
    // share the server's reused plaintext buffers.
    const sizes = [3, 9_000, 9_000, 9_000, 9_000, 900];
    const body = (client: number, id: number) =>
      `${client}:${id}:` + String.fromCharCode(97 + (id % 26)).repeat(sizes[id % sizes.length]);
    const clients = [await RawClient.connect(t.port), await RawClient.connect(t.port)];
    const run = async (raw: RawClient, c: number) => {
      const got: unknown[] = [];
      for (let round = 0; round < 6; round++) {
        const ids = [1, 2, 3, 4].map((k) => round * 4 + k);
        await raw.send(raw.frame(ids.map((id) => ({ type: MsgType.PING, id, body: body(c, id) }))));
        while (got.length < ids.at(-1)!) {
          const frame = await raw.receive();
          assert.ok(frame, "the server closed the connection");
          for (const m of frame) got.push([m.type, m.id, m.body]);
        }
      }
      assert.deepEqual(
        got,
        Array.from({ length: 24 }, (_, i) => [MsgType.PONG, i + 1, body(c, i + 1)]),
      );
    };
    await Promise.all(clients.map((raw, c) => run(raw, c)));
    for (const raw of clients) raw.close();
  }));

Deno.test("a tampered frame closes that connection while another client carries on", () =>
  withServer(async (t) => {
    const bystander = await t.user("bystander");
    const raw = await RawClient.connect(t.port);
    const frame = raw.frame([ping(1)]);
    frame[frame.length - 20] ^= 0x01; // a ciphertext bit
    await raw.send(frame);
    assert.equal(await raw.receive(), null, "the server must close the tampered connection");
    raw.close();
    assert.ok(await bystander.ping() >= 0);
  }));

Deno.test("a tampered length header fails authentication and closes the connection", () =>
  withServer(async (t) => {
    const raw = await RawClient.connect(t.port);
    const frame = raw.frame([ping(1)]);
    const longer = new Uint8Array(frame.length + 1);
    longer.set(frame);
    new DataView(longer.buffer).setUint32(0, frame.length - 4 + 1); // claims one more byte
    await raw.send(longer);
    assert.equal(await raw.receive(), null);
    raw.close();
  }));

Deno.test("a replayed frame closes that connection while another client carries on", () =>
  withServer(async (t) => {
    const bystander = await t.user("bystander");
    const raw = await RawClient.connect(t.port);
    const frame = raw.frame([ping(7)]);
    await raw.send(frame);
    assert.deepEqual((await raw.receive())!.map((m) => m.id), [7]);
    await raw.send(frame); // the same bytes again: the nonce counter has moved on
    assert.equal(await raw.receive(), null);
    raw.close();
    assert.ok(await bystander.ping() >= 0);
  }));

Deno.test("reordered frames close the connection", () =>
  withServer(async (t) => {
    const raw = await RawClient.connect(t.port);
    const first = raw.frame([ping(1)]);
    const second = raw.frame([ping(2)]);
    await raw.send(second);
    await raw.send(first);
    assert.equal(await raw.receive(), null);
    raw.close();
  }));

Deno.test("an oversized length field closes the connection before anything is allocated", () =>
  withServer(async (t) => {
    const raw = await RawClient.connect(t.port);
    await raw.send(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    assert.equal(await raw.receive(), null);
    raw.close();
  }));

Deno.test("a malformed message inside a valid frame gets GENERAL_ERROR and the connection stays", () =>
  withServer(async (t) => {
    const raw = await RawClient.loggedIn(t.port, "alice");
    // type LOGIN, id 5, then a value header claiming 100 bytes that are not there.
    const plaintext = new Uint8Array([0, 0, 0, 1, 0, 0, 0, 5, 2, 0, 0, 0, 100, 0x41]);
    await raw.send(raw.sealer.seal(plaintext));
    const [reply] = (await raw.receive())!;
    assert.equal(reply.type, MsgType.GENERAL_ERROR);
    assert.equal(reply.id, 5);
    assert.match((reply.body as { message: string }).message, /Malformed message/);
    await raw.send(raw.frame([ping(6)]));
    assert.deepEqual((await raw.receive())!.map((m) => m.id), [6]);
    raw.close();
    // Before login no working client sends one: answered, then the connection is closed.
    const anonymous = await RawClient.connect(t.port);
    await anonymous.send(anonymous.sealer.seal(plaintext));
    const [answer] = (await anonymous.receive())!;
    assert.equal(answer.id, 5);
    assert.match((answer.body as { message: string }).message, /closing the connection/);
    assert.equal(await anonymous.receive(), null);
    anonymous.close();
  }));

Deno.test("an unfinished handshake is dropped after the handshake timeout", () =>
  withServer(async (t) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    // Half a hello, then silence (slowloris).
    await writeAll(conn, new Uint8Array(CLIENT_HELLO_BYTES - 10).fill(0x50));
    const started = Date.now();
    assert.equal(await readUntilClosed(conn, 5000), 0);
    const waited = Date.now() - started;
    assert.ok(waited >= 200, `dropped after ${waited} ms, before the 300 ms timeout`);
    conn.close();
    // The server still serves others.
    const c = await t.connect();
    assert.ok(await c.ping() >= 0);
  }, { limits: { handshakeTimeoutMs: 300 } }));

Deno.test("a client hello with the wrong magic is dropped without an answer", () =>
  withServer(async (t) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    await writeAll(
      conn,
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + "x".repeat(20)),
    );
    assert.equal(await readUntilClosed(conn, 5000), 0);
    conn.close();
  }));

Deno.test("an unsupported protocol version, 0 included, is refused with a readable reason", () =>
  withServer(async (t) => {
    for (const version of [0, 9]) {
      await assert.rejects(
        ParleyClient.connect({
          host: "127.0.0.1",
          port: t.port,
          knownHosts: null,
          protocolVersion: version,
        }),
        (e) =>
          e instanceof HandshakeError &&
          new RegExp(`speaks Parley protocol version 1, not ${version}$`).test(e.message),
      );
    }
  }));

Deno.test("a shutdown tells every connected client, logged in or not", async () => {
  const { TestServer } = await import("../helpers/server.ts");
  const t = await TestServer.start();
  try {
    const anonymous = await t.connect();
    const member = await t.user("alice");
    await t.server.close();
    for (const c of [anonymous, member]) {
      const notice = (await c.nextEvent(MsgType.GENERAL_ERROR)).body as {
        code: number;
        message: string;
      };
      assert.equal(notice.code, 12); // SHUTTING_DOWN
      assert.match(notice.message, /shutting down/);
      await c.closed;
    }
  } finally {
    await t.closeClients();
    await Deno.remove(t.dir, { recursive: true });
  }
});
