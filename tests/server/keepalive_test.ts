/** The keepalive on an injected clock: hours of intervals in milliseconds, no sleeping. */

import assert from "node:assert/strict";
import { type Clock, ManualClock } from "../../src/clock/clock.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import { keepaliveTick, startKeepalive } from "../../src/server/keepalive.ts";
import { silentLogger } from "../../src/server/log.ts";
import { Session } from "../../src/server/session.ts";
import { TokenBucket } from "../../src/server/throttle.ts";
import type { Channel } from "../../src/transport/channel.ts";
import { RawClient, readUntilClosed } from "../helpers/raw.ts";
import { withServer } from "../helpers/server.ts";

const LIMITS = { loginTimeoutMs: 120_000, pingIntervalMs: 30_000, pingTimeoutMs: 30_000 };

/** A channel whose peer is driven by the test: `onSend` sees what the server sends. */
class FakeChannel {
  closed = false;
  lastInbound = 0;
  reads = 0;
  pings = 0;
  onSend: (type: number) => void = () => {};
  send(type: number, _id: number, _body: Value): void {
    if (type === MsgType.PING) this.pings++;
    this.onSend(type);
  }
  /** Bytes from the peer at `now` (of the session's clock). */
  inbound(now: number): void {
    this.lastInbound = now;
    this.reads++;
  }
  close(): void {
    this.closed = true;
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  finish(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function session(channel: FakeChannel, clock: Clock): Session {
  const bucket = () => new TokenBucket(100, 100, clock);
  const s = new Session(
    channel as unknown as Channel,
    "127.0.0.1",
    { requests: bucket(), flow: bucket(), preLogin: bucket() },
    clock,
  );
  s.login = {
    user: "alice",
    name: "alice",
    family: null,
    rotates: false,
    device: null,
    oneShot: false,
  };
  return s;
}

/** Runs the keepalive over `s` on `clock` while `fn` advances it. */
function keepalive(s: Session, clock: ManualClock, fn: () => void): void {
  const stop = startKeepalive(new Set([s]), LIMITS, silentLogger, clock);
  try {
    fn();
  } finally {
    stop();
  }
  assert.equal(clock.pending, 0, "stopping the keepalive cancels its timer");
}

Deno.test("keepalive: an idle client whose PONG comes back in the same millisecond stays connected for 1000 intervals", () => {
  const clock = new ManualClock();
  const channel = new FakeChannel();
  // On loopback the PONG often arrives within the millisecond the PING left.
  channel.onSend = (type) => type === MsgType.PING && channel.inbound(clock.now());
  const s = session(channel, clock);
  const tick = keepaliveTick(LIMITS);
  const end = 1000 * LIMITS.pingIntervalMs;
  keepalive(s, clock, () => {
    while (clock.now() < end && !channel.closed) clock.advance(tick);
  });
  assert.ok(!channel.closed, `closed at ${clock.now()} ms after ${channel.pings} PINGs`);
  // One PING per quiet spell: an interval plus at most a tick each.
  const spell = LIMITS.pingIntervalMs + tick;
  assert.ok(channel.pings >= Math.floor(end / spell), `${channel.pings} PINGs`);
  assert.ok(channel.pings <= end / LIMITS.pingIntervalMs, `${channel.pings} PINGs`);
});

Deno.test("keepalive: a peer that stops answering gets one PING and is closed after interval plus timeout", () => {
  const clock = new ManualClock();
  const channel = new FakeChannel();
  let answering = true;
  channel.onSend = (type) => type === MsgType.PING && answering && channel.inbound(clock.now() + 5);
  const s = session(channel, clock);
  const tick = keepaliveTick(LIMITS);
  keepalive(s, clock, () => {
    clock.advance(10 * LIMITS.pingIntervalMs);
    assert.ok(!channel.closed);
    assert.ok(channel.pings >= 5, `${channel.pings} PINGs in 10 intervals`);
    answering = false;
    const pings = channel.pings;
    const silentSince = channel.lastInbound;
    while (!channel.closed) {
      clock.advance(tick);
      assert.ok(clock.now() < silentSince + 3 * LIMITS.pingIntervalMs, "never closed");
    }
    assert.equal(channel.pings, pings + 1, "one PING per quiet spell, not one per tick");
    const silent = clock.now() - silentSince;
    assert.ok(silent > LIMITS.pingIntervalMs + LIMITS.pingTimeoutMs, `closed after ${silent} ms`);
    assert.ok(silent <= LIMITS.pingIntervalMs + LIMITS.pingTimeoutMs + tick);
  });
});

Deno.test("keepalive: the login deadline runs on the session's clock, from the last logout", () => {
  const clock = new ManualClock(1_000_000);
  const channel = new FakeChannel();
  const s = session(channel, clock);
  s.login = null;
  channel.inbound(clock.now());
  const tick = keepaliveTick(LIMITS);
  keepalive(s, clock, () => {
    // Answering PINGs keeps the connection, not the login deadline.
    channel.onSend = (type) => type === MsgType.PING && channel.inbound(clock.now());
    clock.advance(LIMITS.loginTimeoutMs - tick);
    assert.ok(!s.closing, "not before the deadline");
    clock.advance(2 * tick);
    assert.ok(s.closing, "closed once it has passed");
  });
});

Deno.test("keepalive: a client on a real socket that answers every PING stays through 40 quiet spells; once silent it is closed", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const limits = t.config.limits;
      const spell = limits.pingIntervalMs + keepaliveTick(limits);
      const raw = await RawClient.loggedIn(t.port, "alice");
      const ids = new Set<number>();
      for (let i = 0; i < 40; i++) {
        clock.advance(spell);
        const frame = await raw.receive();
        assert.ok(frame !== null, `closed in quiet spell ${i}`);
        assert.deepEqual(frame.map((m) => m.type), [MsgType.PING], `quiet spell ${i}`);
        ids.add(frame[0].id);
        // The PONG, and a request whose answer shows that the server has read both.
        await raw.send(raw.frame([
          { type: MsgType.PONG, id: frame[0].id, body: frame[0].body },
          { type: MsgType.PING, id: 1000 + i, body: null },
        ]));
        assert.deepEqual((await raw.receive())?.map((m) => [m.type, m.id]), [[
          MsgType.PONG,
          1000 + i,
        ]]);
      }
      assert.equal(ids.size, 40, "each PING has its own id");
      clock.advance(spell);
      assert.equal((await raw.receive())?.[0].type, MsgType.PING);
      // No answer this time: closed once the timeout has passed as well.
      clock.advance(limits.pingTimeoutMs);
      assert.equal(await readUntilClosed(raw.conn, 5000), 0);
      raw.close();
    },
    { limits: { pingIntervalMs: 100, pingTimeoutMs: 100 } },
    { clock },
  );
});

Deno.test("keepalive and rate limit: a wall-clock step forward or back neither closes nor refuses", () =>
  withServer(async (t) => {
    const c = await t.user("alice");
    const realNow = Date.now;
    try {
      Date.now = () => realNow() + 125_000; // past interval + timeout
      // The server's own clock: the keepalive checks every 100 ms here.
      await new Promise((r) => setTimeout(r, 250));
      assert.ok(!c.isClosed, "a step forward closed the session");
      Date.now = () => realNow() - 3_600_000;
      for (let i = 0; i < 5; i++) assert.ok(await c.ping() >= 0);
    } finally {
      Date.now = realNow;
    }
  }, {
    limits: { pingIntervalMs: 400, pingTimeoutMs: 400, requestRate: 5, requestBurst: 10 },
  }));
