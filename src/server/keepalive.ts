/**
 * Finds dead and idle connections. Half-open TCP connections are the usual way chat servers
 * lose messages: a peer that vanished without a FIN looks connected forever. After a quiet
 * spell the server sends PING; a peer that stays silent past the timeout is closed, and its
 * undelivered messages wait in the store for the next login. Connections that never log in
 * are closed after the login deadline.
 *
 * Whether a PING is outstanding is known from the channel's count of reads, not by comparing
 * times: on loopback the PONG often arrives within the millisecond the PING left, and a test of
 * `sent < lastInbound` then never sent another PING and closed a healthy idle client.
 */

import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { ErrorCode } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import type { Logger } from "./log.ts";
import type { Session } from "./session.ts";

export interface KeepaliveLimits {
  loginTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

/** Server-chosen ids of PINGs; clients echo them in PONG. */
let nextPingId = 1;

/** How often the sessions are checked: a quarter of the shortest timer, between 20 ms and 1 s. */
export function keepaliveTick(limits: KeepaliveLimits): number {
  return Math.max(20, Math.min(1000, limits.pingIntervalMs / 4, limits.loginTimeoutMs / 4));
}

/** One round of checks at time `now` (of the sessions' clock). */
export function checkSessions(
  sessions: Iterable<Session>,
  limits: KeepaliveLimits,
  log: Logger,
  now: number,
): void {
  for (const s of sessions) {
    if (s.closed) continue;
    if (!s.login && !s.closing && now - s.loggedOutAt > limits.loginTimeoutMs) {
      log.info("session.login_timeout", { session: s.id });
      void s.closeWith(MsgType.GENERAL_ERROR, {
        code: ErrorCode.NOT_LOGGED_IN,
        message: `No login within ${
          Math.round(limits.loginTimeoutMs / 1000)
        } s; closing the connection`,
      }, 500);
      continue;
    }
    const idle = now - s.channel.lastInbound;
    if (idle > limits.pingIntervalMs + limits.pingTimeoutMs) {
      log.info("session.ping_timeout", { session: s.id, user: s.login?.user });
      s.channel.close();
    } else if (idle > limits.pingIntervalMs && s.pingSentAtRead !== s.channel.reads) {
      // No PING is outstanding: none was sent, or something was read since the last one.
      s.pingSentAtRead = s.channel.reads;
      s.channel.send(MsgType.PING, nextPingId, null);
      nextPingId = nextPingId >= 0xffff_ffff ? 1 : nextPingId + 1;
    }
  }
}

/** Checks every session on the clock's timer; returns the function that stops it. */
export function startKeepalive(
  sessions: Iterable<Session>,
  limits: KeepaliveLimits,
  log: Logger,
  clock: Clock = systemClock,
): () => void {
  const tick = keepaliveTick(limits);
  let timer: TimerHandle | undefined;
  let stopped = false;
  const round = () => {
    // Set again before the round, so that a round that throws does not end the keepalive.
    timer = clock.setTimer(round, tick);
    checkSessions(sessions, limits, log, clock.now());
  };
  timer = clock.setTimer(round, tick);
  return () => {
    if (stopped) return;
    stopped = true;
    clock.clearTimer(timer);
  };
}
