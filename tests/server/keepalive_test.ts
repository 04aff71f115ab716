/** The keepalive on an injected clock: hours of intervals in milliseconds, no sleeping. */

import assert from "node:assert/strict";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import { checkSessions, keepaliveTick } from "../../src/server/keepalive.ts";
import { silentLogger } from "../../src/server/log.ts";
import { Session } from "../../src/server/session.ts";
import { TokenBucket } from "../../src/server/throttle.ts";
import type { Channel } from "../../src/transport/channel.ts";
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
  /** Bytes from the peer at `now`. */
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

function session(channel: FakeChannel, clock: () => number): Session {
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

Deno.test("keepalive: an idle client whose PONG comes back in the same millisecond stays connected for 1000 intervals", () => {
  let now = 0;
  const channel = new FakeChannel();
  // On loopback the PONG often arrives within the millisecond the PING left.
  channel.onSend = (type) => type === MsgType.PING && channel.inbound(now);
  const s = session(channel, () => now);
  const tick = keepaliveTick(LIMITS);
  const end = 1000 * LIMITS.pingIntervalMs;
  for (; now <= end; now += tick) {
    checkSessions([s], LIMITS, silentLogger, now);
    assert.ok(!channel.closed, `closed at ${now} ms after ${channel.pings} PINGs`);
  }
  // One PING per quiet spell: an interval plus at most a tick each.
  const spell = LIMITS.pingIntervalMs + tick;
  assert.ok(channel.pings >= Math.floor(end / spell), `${channel.pings} PINGs`);
  assert.ok(channel.pings <= end / LIMITS.pingIntervalMs, `${channel.pings} PINGs`);
});

Deno.test("keepalive: a peer that stops answering gets one PING and is closed after interval plus timeout", () => {
  let now = 0;
  const channel = new FakeChannel();
  let answering = true;
  channel.onSend = (type) => type === MsgType.PING && answering && channel.inbound(now + 5);
  const s = session(channel, () => now);
  const tick = keepaliveTick(LIMITS);
  for (; now < 10 * LIMITS.pingIntervalMs; now += tick) {
    checkSessions([s], LIMITS, silentLogger, now);
  }
  assert.ok(!channel.closed);
  answering = false;
  const pings = channel.pings;
  const silentSince = channel.lastInbound;
  while (!channel.closed) {
    now += tick;
    checkSessions([s], LIMITS, silentLogger, now);
    assert.ok(now < silentSince + 3 * LIMITS.pingIntervalMs, "never closed");
  }
  assert.equal(channel.pings, pings + 1, "one PING per quiet spell, not one per tick");
  const silent = now - silentSince;
  assert.ok(silent > LIMITS.pingIntervalMs + LIMITS.pingTimeoutMs, `closed after ${silent} ms`);
  assert.ok(silent <= LIMITS.pingIntervalMs + LIMITS.pingTimeoutMs + tick);
});

Deno.test("keepalive: the login deadline runs on the session's clock, from the last logout", () => {
  let now = 1_000_000;
  const channel = new FakeChannel();
  const s = session(channel, () => now);
  s.login = null;
  now += LIMITS.loginTimeoutMs;
  channel.inbound(now);
  checkSessions([s], LIMITS, silentLogger, now);
  assert.ok(!s.closing, "not before the deadline");
  now += 1;
  checkSessions([s], LIMITS, silentLogger, now);
  assert.ok(s.closing, "closed once it has passed");
});

Deno.test("keepalive: an idle client on a real socket survives many short intervals", () =>
  withServer(async (t) => {
    const idle = await t.user("alice");
    // 15 quiet spells of 100 ms: a client that answers every PING must still be there.
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(!idle.isClosed, "the idle client was disconnected");
    assert.ok(await idle.ping() >= 0);
  }, { limits: { pingIntervalMs: 100, pingTimeoutMs: 100 } }));

Deno.test("keepalive and rate limit: a wall-clock step forward or back neither closes nor refuses", () =>
  withServer(async (t) => {
    const c = await t.user("alice");
    const realNow = Date.now;
    try {
      Date.now = () => realNow() + 125_000; // past interval + timeout
      await new Promise((r) => setTimeout(r, 1200)); // the keepalive checks once a second
      assert.ok(!c.isClosed, "a step forward closed the session");
      Date.now = () => realNow() - 3_600_000;
      for (let i = 0; i < 5; i++) assert.ok(await c.ping() >= 0);
    } finally {
      Date.now = realNow;
    }
  }, {
    limits: { pingIntervalMs: 30_000, pingTimeoutMs: 30_000, requestRate: 5, requestBurst: 10 },
  }));
