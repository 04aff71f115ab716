/**
 * What the server holds for clients that read slowly or not at all: an anonymous connection
 * may make it buffer little, a logged-in one that takes no byte for `limits.writeStallMs` is
 * closed, and a world-room flood waits at the sender instead of piling up in every reader's
 * queue (`limits.serverOutboundBytes`).
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { newMessageId } from "../../src/client/client.ts";
import { RawClient, readUntilClosed } from "../helpers/raw.ts";
import { type TestServer, withServer } from "../helpers/server.ts";

/** Samples the server's waiting outbound bytes every few ms until stopped; the largest seen. */
function peakOutbound(t: TestServer): { stop(): number } {
  const outboundBytes = () => t.server.outboundBytes();
  let peak = outboundBytes();
  const timer = setInterval(() => peak = Math.max(peak, outboundBytes()), 2);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, outboundBytes());
    },
  };
}

/** Whether the server closed `raw` (reading and dropping whatever it had sent first). */
async function closedByServer(raw: RawClient, ms: number): Promise<boolean> {
  try {
    await readUntilClosed(raw.conn, ms);
    return true;
  } catch {
    return false;
  }
}

const PRE_LOGIN_OUT = 128 * 1024;

Deno.test("anonymous connections that echo PINGs and never read are cut off at a small queue", () =>
  withServer(async (t) => {
    const peak = peakOutbound(t);
    const body = "p".repeat(60 * 1024);
    const raws = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(t.port)));
    // Each sends 200 PINGs of 60 KiB (12 MiB of echoes) and reads nothing.
    await Promise.all(raws.map(async (raw) => {
      for (let i = 0; i < 200; i++) {
        try {
          await raw.send(raw.frame([{ type: MsgType.PING, id: i + 1, body }]));
        } catch {
          return; // closed by the server: what this test expects
        }
      }
    }));
    for (const raw of raws) assert.ok(await closedByServer(raw, 10_000), "closed");
    const most = peak.stop();
    // Each may hold its limit and one frame beyond it before it is cut off.
    assert.ok(
      most <= 5 * (PRE_LOGIN_OUT + 64 * 1024),
      `${most} bytes waited for 5 anonymous connections`,
    );
    for (const raw of raws) raw.close();
  }, { limits: { preLoginOutboundBytes: PRE_LOGIN_OUT } }));

Deno.test("a logged-in connection that takes no byte for writeStallMs is closed", () =>
  withServer(async (t) => {
    const bystander = await t.user("bystander");
    const raw = await RawClient.loggedIn(t.port, "stuck");
    // 8 MiB of echoes, well within its 16 MiB queue, that it never reads; then silence.
    const body = "s".repeat(64 * 1024);
    for (let i = 0; i < 128; i++) {
      await raw.send(raw.frame([{ type: MsgType.PING, id: 10 + i, body }]));
    }
    const online = async () => (await bystander.who(0, 10)).users.includes("stuck");
    const started = Date.now();
    while (await online() && Date.now() - started < 5000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await online(), false, "the stuck reader is gone");
    assert.equal(t.server.outboundBytes(), 0, "and so is what waited for it");
    raw.close();
  }, { limits: { writeStallMs: 300 } }));

// One reader holds all that waits, so its own limit is what the mark protects: with one, a
// commit's copies released before they were sealed let the sender in early, and the reader was
// cut off in 3 runs of 3.
for (const n of [1, 3]) {
  Deno.test(`a world flood waits at the sender: ${n} readers' queues stay under serverOutboundBytes`, () =>
    withServer(async (t) => {
      const sender = await t.user("sender");
      // Logged in (INITIALIZE read), then they stop reading for a while.
      const readers = await Promise.all(
        Array.from({ length: n }, (_, i) => RawClient.loggedIn(t.port, `reader${i}`)),
      );
      const text = "w".repeat(16 * 1024);
      const messages = 400; // 6.4 MiB for each reader
      const peak = peakOutbound(t);
      let acknowledged = 0;
      const sending = Promise.all(
        Array.from(
          { length: messages },
          () => sender.sendText({ world: true }, text).then(() => acknowledged++),
        ),
      );
      sending.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
      // The readers read nothing for a while: the flood must wait rather than queue for them.
      await new Promise((r) => setTimeout(r, 400));
      const acceptedWhilePaused = acknowledged;
      const most = peak.stop();
      const { serverOutboundBytes } = t.config.limits;
      const oneMessage = 17 * 1024 * n;
      assert.ok(
        most <= serverOutboundBytes + 4 * oneMessage,
        `${most} bytes waited; the mark is ${serverOutboundBytes}`,
      );
      assert.ok(acceptedWhilePaused < messages, "the sender was held back");
      // Then they read: every message arrives at every reader, and the sender's all go through.
      const counts = await Promise.all(readers.map(async (raw) => {
        let passes = 0;
        while (passes < messages) {
          const got = await raw.receive(10_000);
          assert.ok(got, "the reader was not cut off");
          passes += got.filter((m) => m.type === MsgType.PASS).length;
        }
        return passes;
      }));
      await sending;
      assert.deepEqual(counts, new Array(n).fill(messages));
      for (const raw of readers) raw.close();
    }, {
      limits: {
        maxOutboundBytes: 1024 * 1024,
        serverOutboundBytes: 1024 * 1024,
        maxFrameBytes: 128 * 1024,
        maxImageBytes: 64 * 1024,
      },
      world: { backlog: 3 }, // what fits in INITIALIZE's share of a 128 KiB frame
      // The server's timers wait for this clock, which does not move: the readers' catching up
      // (in this process, beside the server) is not raced against WORLD_ROOM_WAIT_MS, which on a
      // busy machine it lost. The next test is the one about that wait running out.
    }, { clock: new ManualClock() }));
}

Deno.test("a connection whose world SEND waits for room still gets what others send it", () =>
  withServer(async (t) => {
    const stuck = await RawClient.loggedIn(t.port, "stuck"); // holds every world copy, reads none
    const bob = await t.user("bob");
    const alice = await RawClient.loggedIn(t.port, "alice");
    // Alice floods the world room, four messages a frame, until one of hers waits for room (her
    // later frames then wait unread, so they are written in the background).
    const text = "w".repeat(16 * 1024);
    const flooding = (async () => {
      for (let f = 0; f < 100; f++) {
        await alice.send(alice.frame(
          Array.from({ length: 4 }, (_, i) => ({
            type: MsgType.SEND,
            id: 10 + f * 4 + i,
            body: { id: newMessageId(), world: true, type: "text", data: text },
          })),
        ));
      }
    })().catch(() => {}); // cut off at the end of the test
    const full = Date.now() + 5000;
    while (t.server.outboundBytes() < 768 * 1024 && Date.now() < full) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(t.server.outboundBytes() >= 768 * 1024, "the world room is full");
    // Bob writes to her meanwhile (his SENT waits for her ACK or the clock; neither comes).
    bob.sendText({ user: "alice" }, "are you there?").catch(() => {});
    let got = false;
    const deadline = Date.now() + 3000;
    while (!got && Date.now() < deadline) {
      const frame = await alice.receive(deadline - Date.now()).catch(() => null);
      if (frame === null) break;
      got = frame.some((m) =>
        m.type === MsgType.PASS &&
        (m.body as { source_username?: string }).source_username === "bob"
      );
    }
    assert.ok(got, "bob's message reached alice while her world SEND waited");
    stuck.close();
    alice.close();
    await flooding;
  }, {
    limits: {
      maxOutboundBytes: 1024 * 1024,
      serverOutboundBytes: 1024 * 1024,
      maxFrameBytes: 128 * 1024,
      maxImageBytes: 64 * 1024,
    },
    world: { backlog: 3 },
  }, { clock: new ManualClock() }));

Deno.test("readers that never read hold a world flood up for seconds at most, then are cut off", () =>
  withServer(async (t) => {
    const sender = await t.user("sender");
    const bystander = await t.user("bystander");
    // Three of them: each stays under its own queue limit while together they fill the mark.
    const stuck = await Promise.all([0, 1, 2].map((i) => RawClient.loggedIn(t.port, `stuck${i}`)));
    const text = "w".repeat(16 * 1024);
    const started = Date.now();
    // 6 MiB for every reader: far more than the mark while the stuck ones take nothing.
    await Promise.all(
      Array.from({ length: 400 }, () => sender.sendText({ world: true }, text)),
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < 10, `the flood took ${seconds} s`);
    const online = (await bystander.who(0, 10)).users;
    assert.deepEqual(online.filter((u) => u.startsWith("stuck")), [], "the stuck were cut off");
    for (const raw of stuck) raw.close();
  }, {
    limits: {
      maxOutboundBytes: 1024 * 1024,
      serverOutboundBytes: 1024 * 1024,
      maxFrameBytes: 128 * 1024,
      maxImageBytes: 64 * 1024,
    },
    world: { backlog: 3 },
  }));

Deno.test("LOGOUT with megabytes still queued for the client gets its OK (the lower limit waits for the drain)", () =>
  withServer(async (t) => {
    const bob = await t.user("bob");
    const raw = await RawClient.loggedIn(t.port, "alice");
    const text = "w".repeat(16_000);
    for (let b = 0; b < 8; b++) {
      await Promise.all(Array.from({ length: 100 }, () => bob.sendText({ world: true }, text)));
    }
    assert.ok(
      t.server.outboundBytes() > t.config.limits.preLoginOutboundBytes,
      "more waits for alice than a logged-out connection may hold",
    );
    await raw.send(raw.frame([{ type: MsgType.LOGOUT, id: 9, body: null }]));
    let reply: number | null = null;
    while (reply === null) {
      const got = await raw.receive(10_000);
      assert.ok(got, "the connection closed before LOGOUT's answer");
      reply = got.find((m) => m.id === 9)?.type ?? null;
    }
    assert.equal(reply, MsgType.OK);
    raw.close();
  }));
