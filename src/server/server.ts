/**
 * The server: listener, per-connection loop, shutdown. A connection is handshake → channel →
 * for each decoded message, dispatch in order. A bad frame closes only its own connection.
 */

import { acceptEach, closeQuietly } from "./accept.ts";
import type { Config } from "../config/config.ts";
import { fingerprint, type KeyPair } from "../crypto/keys.ts";
import { PasswordHasher } from "../crypto/password.ts";
import { onInvariantBroken } from "../invariant/invariant.ts";
import { ErrorCode, FrameAuthError, FrameSizeError, HandshakeError } from "../protocol/errors.ts";
import type { DecodedMessages } from "../protocol/message_codec.ts";
import { MsgType } from "../protocol/messages.ts";
import { openKvStore } from "../store/kv_store.ts";
import type { Store } from "../store/types.ts";
import { Channel, isConnectionGone, noDelay, OutboundTotal } from "../transport/channel.ts";
import { chooseAesGcm } from "../crypto/aes_gcm.ts";
import { acceptHandshake } from "../transport/handshake_io.ts";
import type { ServerContext } from "./context.ts";
import { dispatch, dispatchMalformed, FLOW_BUDGET_FACTOR, MAX_FRAME_VALUES } from "./dispatch.ts";
import { type Clock, monotonic } from "./clock.ts";
import { LocalHub } from "./hub.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { createLogger, type Logger } from "./log.ts";
import { FileRelay } from "./file_relay.ts";
import { type HttpEndpoint, serveHttp } from "./http.ts";
import { startKeepalive } from "./keepalive.ts";
import { ServerMetrics } from "./metrics.ts";
import { LoginThrottle, RegistrationBudget, TokenBucket } from "./throttle.ts";
import { farewell } from "./presence.ts";
import { SendBudget } from "./send_budget.ts";
import { peerKey } from "./peer_key.ts";
import { Session } from "./session.ts";

export interface RunningServer {
  addr: Deno.NetAddr;
  /** The identity key's fingerprint, as clients show it. */
  fingerprint: string;
  /** Where /healthz and /metrics are served; null unless `http.enabled`. */
  http: Deno.NetAddr | null;
  /** Stops accepting, tells clients, closes connections and the store. */
  close(): Promise<void>;
  /** Sealed bytes waiting for clients' sockets, all sessions together. */
  outboundBytes(): number;
  /** Resolves once the server has fully stopped. */
  finished: Promise<void>;
}

const HOUR_MS = 60 * 60 * 1000;

/** How long shutdown waits for connections to finish their current request. */
const SHUTDOWN_GRACE_MS = 3000;

export interface ServerOptions {
  /** The monotonic clock of the keepalive and the request limits (tests may drive it). */
  clock?: Clock;
  /**
   * A broken invariant throws where it broke (tests). Otherwise the server logs it
   * (`invariant.broken`), counts it (`parley_invariant_violations_total`) and goes on.
   */
  strictInvariants?: boolean;
}

export async function startServer(
  config: Config,
  log: Logger = createLogger(),
  options: ServerOptions = {},
): Promise<RunningServer> {
  const clock = options.clock ?? monotonic;
  // The ports first: a busy one is refused, naming its address, before anything is made in the
  // data dir (its first start would otherwise leave a key and an empty store behind).
  const listener = listenOn(config.host, config.port, "chat");
  let httpListener: Deno.TcpListener | null = null;
  if (config.http.enabled) {
    try {
      httpListener = listenOn(config.http.host, config.http.port, "HTTP");
    } catch (e) {
      listener.close();
      throw e;
    }
  }
  const unlisten = () => {
    listener.close();
    httpListener?.close();
  };
  const aes = chooseAesGcm(config.crypto.nativeAes);
  const metrics = new ServerMetrics();
  const restoreInvariants = options.strictInvariants ? () => {} : onInvariantBroken((what) => {
    metrics.invariantBroken();
    log.error("invariant.broken", { what });
  });
  // The store next: it locks the data dir, so a second server started on the same dir is
  // refused as such before it reads or makes the identity key.
  let store: Store;
  try {
    store = await openKvStore(config.dataDir, {
      worldBacklog: config.world.backlog,
      onCommit: (seconds) => metrics.kvCommit(seconds),
    });
  } catch (e) {
    unlisten();
    throw e;
  }
  let identity: KeyPair;
  try {
    await warnIfExposed(config.dataDir, log);
    identity = await loadOrCreateIdentity(config.dataDir);
  } catch (e) {
    unlisten();
    await store.close();
    throw e;
  }
  const { accounts } = config;
  const ctx: ServerContext = {
    config,
    store,
    hub: new LocalHub(),
    hasher: new PasswordHasher({
      params: accounts.scrypt,
      concurrency: accounts.hashConcurrency,
      queue: accounts.hashQueue,
    }),
    log,
    files: null as unknown as FileRelay,
    sends: new SendBudget(config.queue.senderBytesPerMinute, clock),
    logins: new LoginThrottle({
      freeFailures: accounts.loginFreeFailures,
      userFreeFailures: accounts.loginNameFailures,
      baseDelayMs: accounts.loginDelayMs,
      maxDelayMs: accounts.loginMaxDelayMs,
      clock,
    }),
    registrations: new RegistrationBudget({
      perAddress: accounts.registerPerIp,
      overall: accounts.registerPerHour,
      windowMs: HOUR_MS,
      clock,
    }),
    metrics,
    outbound: new OutboundTotal(),
  };
  ctx.files = new FileRelay(ctx.hub, config.files, config.limits.maxFileBytes);
  const addr = listener.addr as Deno.NetAddr;
  const print = fingerprint(identity.publicKey);
  log.info("server.listening", {
    addr: `${addr.hostname}:${addr.port}`,
    fingerprint: print,
    aes,
    // Whether this process could still load native code (README, Security).
    native_code: Deno.permissions.querySync({ name: "ffi" }).state === "granted" ||
        Deno.permissions.querySync({ name: "run" }).state === "granted"
      ? "allowed"
      : "given_up",
  });

  /** Each connection's serving task, until it ends, so that shutdown can wait for them. */
  const connections = new Map<Deno.Conn, Promise<void>>();
  const open = new Set<Deno.Conn>();
  /** Every session past its handshake, logged in or not, for keepalive and shutdown. */
  const sessions = new Set<Session>();
  const perIp = new Map<string, number>();
  const stopKeepalive = startKeepalive(sessions, config.limits, log, clock);
  let stopping = false;
  metrics.readFrom({
    connections: () => open.size,
    online: () => ctx.hub.onlineCount,
    queued: () => store.inbox.queued(),
    outbound: () => ctx.outbound.bytes,
  });
  const http: HttpEndpoint | null = httpListener &&
    serveHttp(
      httpListener,
      metrics,
      {
        accepting: () => !stopping,
        connections: () => open.size,
        pingStore: () => store.ping(),
      },
      log,
      config.http,
    );

  /**
   * The handshake, bounded by its timeout, then the session. Apart from serveOne because a
   * suspended async function keeps every temporary it ever held: serveOne waits for the whole
   * life of the connection and should hold no handshake state meanwhile.
   */
  const openSession = async (conn: Deno.Conn, ip: string, peer: string): Promise<Session> => {
    const timer = setTimeout(() => {
      log.info("handshake.timeout", { peer });
      closeQuietly(conn);
    }, config.limits.handshakeTimeoutMs);
    let handshake;
    try {
      handshake = await acceptHandshake(conn, identity, config.limits.maxFrameBytes);
    } finally {
      clearTimeout(timer);
    }
    const channel = new Channel(conn, handshake.keys, handshake.decoder, {
      maxFrameBytes: config.limits.maxFrameBytes,
      // Small until login (welcome raises it): an anonymous peer that never reads holds little.
      maxOutboundBytes: config.limits.preLoginOutboundBytes,
      writeStallMs: config.limits.writeStallMs,
      total: ctx.outbound,
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
    sessions.add(session);
    channel.onFault = (e) => log.info("session.fault", { session: session.id, error: e.message });
    log.debug("session.open", { session: session.id, peer });
    return session;
  };

  /** Handles one inbound frame: its requests in order, their replies leaving together. */
  const frameHandler = (session: Session) => async (decoded: DecodedMessages) => {
    const { messages, error, values } = decoded;
    session.channel.cork();
    try {
      for (let i = 0; i < messages.length; i++) {
        const waiting = dispatch(ctx, session, messages[i], values?.[i]);
        if (waiting) await waiting;
      }
      if (error) {
        const waiting = dispatchMalformed(ctx, session, error, values?.[messages.length]);
        if (waiting) await waiting;
      }
    } finally {
      session.channel.uncork();
    }
  };

  const serveOne = async (conn: Deno.Conn, ip: string) => {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const peer = `${remote.hostname}:${remote.port}`;
    open.add(conn);
    let session: Session | null = null;
    try {
      session = await openSession(conn, ip, peer);
      await session.channel.receive(frameHandler(session));
    } catch (e) {
      if (e instanceof FrameAuthError || e instanceof FrameSizeError) {
        metrics.frameRejected(e instanceof FrameSizeError ? "size" : "auth");
        log.warn("frame.rejected", { peer, session: session?.id, error: e.message });
      } else if (e instanceof HandshakeError) {
        log.info("handshake.failed", { peer, error: e.message });
        ctx.metrics.handshakeFailed();
      } else if (!isConnectionGone(e)) {
        log.error("connection.failed", { peer, error: e instanceof Error ? e.message : String(e) });
      }
    } finally {
      open.delete(conn);
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left === 0) perIp.delete(ip);
      else perIp.set(ip, left);
      try {
        if (session) {
          sessions.delete(session);
          session.channel.close();
          await farewell(ctx, session).catch((e) =>
            log.error("session.farewell_failed", {
              session: session!.id,
              error: (e as Error).message,
            })
          );
          log.debug("session.closed", { session: session.id });
        } else {
          closeQuietly(conn);
        }
      } finally {
        connections.delete(conn);
      }
    }
  };

  const acceptLoop = acceptEach(listener, () => stopping, log, "listener.accept_failed", (conn) => {
    noDelay(conn);
    // The per-address key: an IPv6 peer counts as its prefix (peer_key.ts).
    const ip = peerKey((conn.remoteAddr as Deno.NetAddr).hostname, config.limits.ipv6PrefixBits);
    const fromIp = perIp.get(ip) ?? 0;
    if (
      open.size >= config.limits.maxConnections || fromIp >= config.limits.maxConnectionsPerIp
    ) {
      log.warn("connection.refused", { peer: ip, open: open.size, from_ip: fromIp });
      closeQuietly(conn);
      return;
    }
    perIp.set(ip, fromIp + 1);
    connections.set(conn, serveOne(conn, ip));
  });

  let closing: Promise<void> | null = null;
  const close = () =>
    closing ??= (async () => {
      stopping = true;
      stopKeepalive();
      log.info("server.stopping", { online: ctx.hub.onlineCount, connections: open.size });
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      await acceptLoop;
      const notices = [...sessions].map((s) =>
        s.closeWith(MsgType.GENERAL_ERROR, {
          code: ErrorCode.SHUTTING_DOWN,
          message: "The server is shutting down",
        }, 1000)
      );
      await Promise.all(notices);
      for (const conn of open) closeQuietly(conn);
      await Promise.race([
        Promise.allSettled([...connections.values()]),
        new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS)),
      ]);
      await store.close();
      // Last, so that /healthz answers 503 while the server drains.
      await http?.close();
      restoreInvariants();
      log.info("server.stopped");
    })();

  let finish!: () => void;
  const finished = new Promise<void>((r) => finish = r);
  return {
    addr,
    fingerprint: print,
    http: http?.addr ?? null,
    close: () => close().then(finish),
    outboundBytes: () => ctx.outbound.bytes,
    finished,
  };
}

/**
 * Warns when the data dir lets others in: a dir made by Parley is 0700, but one that existed
 * before keeps its mode, and its files (password hashes, queued messages, the identity key) are
 * then only as safe as each file's own mode.
 */
async function warnIfExposed(dataDir: string, log: Logger): Promise<void> {
  if (Deno.build.os === "windows") return;
  const mode = (await Deno.stat(dataDir)).mode;
  if (mode !== null && (mode & 0o077) !== 0) {
    log.warn("data_dir.exposed", {
      dir: dataDir,
      mode: (mode & 0o777).toString(8).padStart(4, "0"),
      advice: `chmod 700 ${dataDir}`,
    });
  }
}

/** Binds `host:port`; a taken port is refused in a sentence that names the address. */
function listenOn(host: string, port: number, what: string): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: host, port });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(
        `Cannot listen on ${addressText(host, port)} (${what}): another process is using it`,
        { cause: e },
      );
    }
    throw e;
  }
}

function addressText(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
