/**
 * One chat connection's life: admission → handshake → session → each inbound frame dispatched
 * in order → farewell. A bad frame or a failed handshake ends only its own connection; how it
 * ended is logged here, once.
 */

import { closeQuietly } from "./accept.ts";
import type { KeyPair } from "../crypto/keys.ts";
import { FrameAuthError, FrameSizeError, HandshakeError } from "../protocol/errors.ts";
import type { DecodedMessages } from "../protocol/message_codec.ts";
import { Channel } from "../transport/channel.ts";
import { isConnectionGone, TcpTransport } from "../transport/tcp.ts";
import type { Transport } from "../transport/transport.ts";
import type { Clock, TimerHandle } from "../clock/clock.ts";
import { acceptHandshake } from "../transport/handshake_io.ts";
import type { ConnectionTable } from "./connection_table.ts";
import type { ServerContext } from "./context.ts";
import { dispatch, dispatchMalformed, FLOW_BUDGET_FACTOR, MAX_FRAME_VALUES } from "./dispatch.ts";
import { farewell } from "./presence.ts";
import { Session } from "./session.ts";
import type { SessionRegistry } from "./session_registry.ts";
import { TokenBucket } from "./throttle.ts";

export class ConnectionLifecycle {
  /** Frames read from clients so far (the idle collector's sign of activity). */
  framesRead = 0;
  /** Each connection's serving task, until it ends (farewell included), so shutdown can wait. */
  readonly #serving = new Map<Deno.Conn, Promise<void>>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly identity: KeyPair,
    /** Admits and releases connections; this is the only part that does. */
    private readonly table: ConnectionTable,
    /** Sessions are added after their handshake and removed when their connection ends. */
    private readonly sessions: SessionRegistry,
    private readonly clock: Clock,
  ) {}

  /** Takes a connection the chat listener accepted: serves it, or refuses it over a cap. */
  accept(conn: Deno.Conn): void {
    // The per-address key: an IPv6 peer counts as its prefix (peer_key.ts).
    const ip = this.table.keyOf((conn.remoteAddr as Deno.NetAddr).hostname);
    if (!this.table.admit(conn, ip)) {
      this.ctx.log.warn("connection.refused", {
        peer: ip,
        open: this.table.size,
        from_ip: this.table.countFrom(ip),
      });
      closeQuietly(conn);
      return;
    }
    this.#serving.set(conn, this.#serveOne(new TcpTransport(conn), conn, ip));
  }

  /**
   * Serves a connection another listener admitted to the table and made into a transport (the
   * web port's WebSockets): the same handshake, session and limits as a TCP connection's.
   * `conn` is its key in the table, released when the serving ends.
   */
  serveAdmitted(transport: Transport, conn: Deno.Conn, ip: string): void {
    this.#serving.set(conn, this.#serveOne(transport, conn, ip));
  }

  /** Resolves once every connection's serving has ended. */
  async ended(): Promise<void> {
    await Promise.allSettled([...this.#serving.values()]);
  }

  async #serveOne(transport: Transport, conn: Deno.Conn, ip: string): Promise<void> {
    const { log, metrics } = this.ctx;
    const peer = `${transport.peer.hostname}:${transport.peer.port}`;
    let session: Session | null = null;
    try {
      session = await this.#openSession(transport, ip, peer);
      await session.channel.receive(this.#frameHandler(session));
    } catch (e) {
      if (e instanceof FrameAuthError || e instanceof FrameSizeError) {
        metrics.frameRejected(e instanceof FrameSizeError ? "size" : "auth");
        log.warn("frame.rejected", { peer, session: session?.id, error: e.message });
      } else if (e instanceof HandshakeError) {
        log.info("handshake.failed", { peer, error: e.message });
        metrics.handshakeFailed();
      } else if (!isConnectionGone(e) && !transport.isGone(e)) {
        log.error("connection.failed", { peer, error: e instanceof Error ? e.message : String(e) });
      }
    } finally {
      this.table.release(conn);
      try {
        if (session) {
          this.sessions.remove(session);
          session.channel.close();
          await farewell(this.ctx, session).catch((e) =>
            log.error("session.farewell_failed", {
              session: session!.id,
              error: (e as Error).message,
            })
          );
          log.debug("session.closed", { session: session.id });
        } else {
          transport.close();
        }
      } finally {
        this.#serving.delete(conn);
      }
    }
  }

  /**
   * The handshake, bounded by its timeout, then the session. Apart from serveOne because a
   * suspended async function keeps every temporary it ever held: serveOne waits for the whole
   * life of the connection and should hold no handshake state meanwhile.
   */
  async #openSession(transport: Transport, ip: string, peer: string): Promise<Session> {
    const { config, log } = this.ctx;
    const clock = this.clock;
    const timer: TimerHandle = clock.setTimer(() => {
      log.info("handshake.timeout", { peer });
      transport.close();
    }, config.limits.handshakeTimeoutMs);
    let handshake;
    try {
      handshake = await acceptHandshake(transport, this.identity, config.limits.maxFrameBytes);
    } finally {
      clock.clearTimer(timer);
    }
    const channel = new Channel(transport, handshake.keys, handshake.decoder, {
      maxFrameBytes: config.limits.maxFrameBytes,
      // Small until login (welcome raises it): an anonymous peer that never reads holds little.
      maxOutboundBytes: config.limits.preLoginOutboundBytes,
      writeStallMs: config.limits.writeStallMs,
      total: this.ctx.outbound,
      maxDepth: config.limits.maxValueDepth,
      maxValues: MAX_FRAME_VALUES,
      clock,
    });
    // Small frames until login: an anonymous peer cannot make us hold megabytes.
    channel.setInboundLimit(config.limits.preLoginFrameBytes);
    const { requestRate, requestBurst, preLoginRequestRate, preLoginRequestBurst } = config.limits;
    const session = new Session(channel, ip, {
      requests: new TokenBucket(requestRate, requestBurst, clock),
      flow: new TokenBucket(
        requestRate * FLOW_BUDGET_FACTOR,
        requestBurst * FLOW_BUDGET_FACTOR,
        clock,
      ),
      preLogin: new TokenBucket(preLoginRequestRate, preLoginRequestBurst, clock),
    }, clock);
    this.sessions.add(session);
    channel.onFault = (e) => log.info("session.fault", { session: session.id, error: e.message });
    log.debug("session.open", { session: session.id, peer });
    return session;
  }

  /** Handles one inbound frame: its requests in order, their replies leaving together. */
  #frameHandler(session: Session): (decoded: DecodedMessages) => Promise<void> {
    const ctx = this.ctx;
    return async (decoded: DecodedMessages) => {
      this.framesRead++;
      const { messages, error, values } = decoded;
      session.channel.cork();
      try {
        for (let i = 0; i < messages.length; i++) {
          const waiting = dispatch(ctx, session, messages[i], values?.[i]);
          if (waiting) await uncorkedWhile(session, waiting);
        }
        if (error) {
          const waiting = dispatchMalformed(ctx, session, error, values?.[messages.length]);
          if (waiting) await uncorkedWhile(session, waiting);
        }
      } finally {
        session.channel.uncork();
      }
    };
  }
}

/**
 * Waits for a request that is not handled at once with the connection's output uncorked: what
 * was answered so far, and what others push to it meanwhile (a PASS), leave at the end of the
 * turn instead of waiting for the whole frame. A world SEND may wait seconds for room; corked
 * meanwhile, the copies pushed to this connection were not yet counted as waiting output either.
 */
async function uncorkedWhile(session: Session, waiting: Promise<void>): Promise<void> {
  session.channel.uncork();
  try {
    await waiting;
  } finally {
    session.channel.cork();
  }
}
