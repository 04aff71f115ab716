/**
 * Hostile clients against a real server: each attack is tried, the server must refuse it
 * in words or drop only that connection, and keep serving a bystander afterwards.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { keepaliveTick } from "../../src/server/keepalive.ts";
import { newMessageId } from "../../src/client/client.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { Tag } from "../../src/protocol/value.ts";
import { rejects } from "../helpers/assert.ts";
import { RawClient, readUntilClosed } from "../helpers/raw.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("spoofed sender fields are ignored: the server says who sent a message", () =>
  withServer(async (t) => {
    const mallory = await t.user("mallory");
    const alice = await t.user("alice");
    await t.user("bob");
    const reply = await mallory.request(MsgType.SEND, {
      id: newMessageId(),
      target_username: "alice",
      type: "text",
      data: "hi, it's bob",
      source_username: "bob",
      from: "bob",
      time: new Date(0),
    });
    assert.equal(reply.type, MsgType.SENT);
    const pass = (await alice.nextEvent(MsgType.PASS)).body as Record<string, unknown>;
    assert.equal(pass.source_username, "mallory");
    assert.notDeepEqual(pass.time, new Date(0));
    // LOGOUT naming someone else does not touch them either.
    await rejects(mallory.call(MsgType.LOGOUT, "alice"), ErrorCode.BAD_REQUEST);
    assert.ok(await alice.ping() >= 0);
  }));

Deno.test("deep nesting and invalid UTF-8 inside a sealed frame get BAD_REQUEST, nothing more", () =>
  withServer(async (t) => {
    const bystander = await t.user("bystander");
    const raw = await RawClient.loggedIn(t.port, "mallory");
    // PING whose body nests 40 lists deep (the limit is 16).
    let value = new Uint8Array([Tag.NULL, 0, 0, 0, 0]);
    for (let i = 0; i < 40; i++) {
      const outer = new Uint8Array(5 + value.length);
      outer[0] = Tag.LIST;
      new DataView(outer.buffer).setUint32(1, value.length);
      outer.set(value, 5);
      value = outer;
    }
    const deep = new Uint8Array(8 + value.length);
    new DataView(deep.buffer).setUint32(0, MsgType.PING);
    new DataView(deep.buffer).setUint32(4, 3);
    deep.set(value, 8);
    await raw.send(raw.sealer.seal(deep));
    const [nested] = (await raw.receive())!;
    assert.equal(nested.type, MsgType.GENERAL_ERROR);
    assert.match((nested.body as { message: string }).message, /nested too deeply/);
    // LOGIN whose username is not UTF-8.
    const badUtf8 = new Uint8Array([
      ...[0, 0, 0, 1, 0, 0, 0, 4],
      ...[Tag.LIST, 0, 0, 0, 14],
      ...[Tag.STR, 0, 0, 0, 2, 0xc3, 0x28],
      ...[Tag.STR, 0, 0, 0, 2, 0x41, 0x41],
    ]);
    await raw.send(raw.sealer.seal(badUtf8));
    const [utf] = (await raw.receive())!;
    assert.equal(utf.id, 4);
    assert.match((utf.body as { message: string }).message, /Invalid UTF-8/);
    raw.close();
    assert.ok(await bystander.ping() >= 0);
  }));

Deno.test("a truncated frame followed by silence is closed by the keepalive, not held forever", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const limits = t.config.limits;
      const raw = await RawClient.connect(t.port);
      // An answer first: the server's session (and its keepalive) exists before the clock moves.
      await raw.send(raw.frame([{ type: MsgType.PING, id: 1, body: null }]));
      assert.equal((await raw.receive())?.[0].type, MsgType.PONG);
      const frame = raw.frame([{ type: MsgType.PING, id: 2, body: null }]);
      await raw.send(frame.subarray(0, frame.length - 5));
      clock.advance(limits.pingIntervalMs + keepaliveTick(limits));
      const ping = await raw.receive();
      assert.equal(ping?.[0].type, MsgType.PING, "still open after the interval: a PING");
      // Whenever the server read the partial frame, it is closed within another spell.
      clock.advance(limits.pingIntervalMs + limits.pingTimeoutMs + keepaliveTick(limits));
      await readUntilClosed(raw.conn, 5000); // perhaps a second PING; then the close
      raw.close();
    },
    { limits: { pingIntervalMs: 200, pingTimeoutMs: 200 } },
    { clock },
  );
});

Deno.test("a slow consumer is disconnected when its queue fills; senders and others carry on", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bystander = await t.user("bystander");
    // A logged-in client (INITIALIZE read) that never reads again.
    const slow = await RawClient.loggedIn(t.port, "slow");
    const text = "w".repeat(16 * 1024);
    const online = async () => (await alice.who(0, 10)).users.includes("slow");
    assert.ok(await online());
    let sent = 0;
    // World messages go to everyone online with no window: exactly what a slow reader chokes
    // on. Nothing reads `slow`'s socket, so once the kernel buffers fill, the server's queue does.
    while (await online() && sent < 4000) {
      await Promise.all(Array.from({ length: 20 }, () => alice.sendText({ world: true }, text)));
      sent += 20;
    }
    assert.ok(!await online(), `the slow consumer was still connected after ${sent} messages`);
    slow.close();
    assert.ok(await alice.ping() >= 0);
    assert.ok(await bystander.ping() >= 0);
  }, {
    limits: { maxOutboundBytes: 256 * 1024, maxFrameBytes: 80 * 1024, maxImageBytes: 32 * 1024 },
    world: { backlog: 2 }, // what fits in INITIALIZE's share of an 80 KiB frame
  }));

Deno.test("many anonymous half-sent frames cannot grow a server process's memory", async () => {
  const { fastConfig, ServerProcess } = await import("../helpers/cli.ts");
  const { ParleyClient } = await import("../../src/client/client.ts");
  const { join } = await import("node:path");
  const dir = await Deno.makeTempDir({ prefix: "parley-loris-" });
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir));
  const rss = () =>
    Number(
      /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${server.child.pid}/status`))![1],
    ) * 1024;
  const raws: RawClient[] = [];
  try {
    const before = rss();
    for (let i = 0; i < 45; i++) {
      const raw = await RawClient.connect(server.port);
      raws.push(raw);
      // Half the peers claim a 60 KiB frame (allowed before login), the others 4 MiB (the
      // server's full limit after login); each sends 30 KiB of it and then goes silent.
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, i % 2 ? 60 * 1024 : 4 * 1024 * 1024);
      await raw.send(header);
      await raw.send(new Uint8Array(30 * 1024)).catch(() => {});
    }
    // The 4 MiB claims are refused before anything is allocated.
    for (let i = 0; i < 45; i += 2) assert.equal(await raws[i].receive(), null);
    await new Promise((r) => setTimeout(r, 200));
    const growth = rss() - before;
    assert.ok(growth < 24 * 1024 * 1024, `server RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
    const bystander = await ParleyClient.connect({
      host: "127.0.0.1",
      port: server.port,
      knownHosts: null,
    });
    assert.ok(await bystander.ping() >= 0);
    bystander.close();
    await bystander.closed;
  } finally {
    for (const r of raws) r.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
