/**
 * The server: an object made of named parts, built in order, each handed what it needs.
 *
 * - `Listeners` (listeners.ts): the chat and HTTP ports, bound first.
 * - `ConnectionTable` (connection_table.ts): the open connections and their caps.
 * - `SessionRegistry` (session_registry.ts): sessions past their handshake.
 * - `ConnectionLifecycle` (lifecycle.ts): one connection from accept to farewell.
 * - the HTTP endpoint (http.ts) and the keepalive (keepalive.ts).
 * - the web port (web/web_listener.ts): the browser client's files and its WebSockets, which
 *   the lifecycle serves like chat connections.
 *
 * Data flows one way: the server drives the lifecycle, the lifecycle fills the table and the
 * registry, shutdown reads them. `startServer` is the one entry point.
 */

import { acceptEach, closeQuietly } from "./accept.ts";
import type { Config } from "../config/config.ts";
import { fingerprint, type KeyPair } from "../crypto/keys.ts";
import { PasswordHasher } from "../crypto/password.ts";
import { onInvariantBroken } from "../invariant/invariant.ts";
import { openKvStore } from "../store/kv_store.ts";
import type { Store } from "../store/types.ts";
import { OutboundTotal } from "../transport/outbound_total.ts";
import { aesGcm, chooseAesGcm } from "../crypto/aes_gcm.ts";
import type { ServerContext } from "./context.ts";
import { type Clock, systemClock } from "../clock/clock.ts";
import { ConnectionTable } from "./connection_table.ts";
import { LocalHub } from "./hub.ts";
import { type ClusterNode, joinCluster } from "./cluster/node.ts";
import { ClusterFileRelay } from "./cluster/cluster_files.ts";
import type { ClusterEvents, ClusterHub } from "./cluster/cluster_hub.ts";
import { replaced } from "./handlers/accounts.ts";
import { recheckSessions } from "./handlers/session_recheck.ts";
import { endSession, tellLocalFriends } from "./presence.ts";
import { loadOrCreateIdentity } from "../store/identity.ts";
import { ConnectionLifecycle } from "./lifecycle.ts";
import { Listeners } from "./listeners.ts";
import { createLogger, type Logger } from "./log.ts";
import { FileRelay } from "./file_relay.ts";
import { type HttpEndpoint, serveHttp } from "./http.ts";
import { IdleCollector, reducingCollection } from "./idle_collector.ts";
import { startKeepalive } from "./keepalive.ts";
import { ServerMetrics } from "./metrics.ts";
import { LoginThrottle, RegistrationBudget } from "./throttle.ts";
import { SendBudget } from "./send_budget.ts";
import { SessionRegistry, SHUTDOWN_NOTICE_MS } from "./session_registry.ts";
import { type AssetTable, loadAssets } from "./web/assets.ts";
import { serveWeb, type WebEndpoint } from "./web/web_listener.ts";

export interface RunningServer {
  addr: Deno.NetAddr;
  /** The identity key's fingerprint, as clients show it. */
  fingerprint: string;
  /** Where /healthz and /metrics are served; null unless `http.enabled`. */
  http: Deno.NetAddr | null;
  /** The web client's URL ("http://127.0.0.1:8080/"); null unless `web.enabled`. */
  web: string | null;
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
  /** The clock of the keepalive, the limits, deadlines and the store (tests may drive it). */
  clock?: Clock;
  /**
   * A broken invariant throws where it broke (tests). Otherwise the server logs it
   * (`invariant.broken`), counts it (`parley_invariant_violations_total`) and goes on.
   */
  strictInvariants?: boolean;
  /** The idle collector's heap reading and collection (tests); V8's by default, if exposed. */
  idleCollection?: { heapUsed(): number; collect(): void };
  /** The web client's files (tests); read from src/webapp/ by default. */
  webAssets?: AssetTable;
}

export async function startServer(
  config: Config,
  log: Logger = createLogger(),
  options: ServerOptions = {},
): Promise<RunningServer> {
  const server = await ParleyServer.start(config, log, options);
  let finish!: () => void;
  const finished = new Promise<void>((r) => finish = r);
  return {
    addr: server.addr,
    fingerprint: server.fingerprint,
    http: server.httpAddr,
    web: server.webUrl,
    close: () => server.close().then(finish),
    outboundBytes: () => server.outboundBytes(),
    finished,
  };
}

class ParleyServer {
  readonly addr: Deno.NetAddr;
  readonly fingerprint: string;
  readonly #ctx: ServerContext;
  readonly #listeners: Listeners;
  readonly #table: ConnectionTable;
  readonly #sessions = new SessionRegistry();
  readonly #lifecycle: ConnectionLifecycle;
  readonly #http: HttpEndpoint | null;
  readonly #web: WebEndpoint | null;
  readonly #stopKeepalive: () => void;
  readonly #collector: IdleCollector | null;
  readonly #acceptLoop: Promise<void>;
  #stopping = false;
  #closing: Promise<void> | null = null;

  /**
   * Ports, store, identity, context, in that order; a failure lets go of what was already
   * taken. Then the server starts serving.
   */
  static async start(config: Config, log: Logger, options: ServerOptions): Promise<ParleyServer> {
    const clock = options.clock ?? systemClock;
    // Before the ports: crypto.nativeAes "require" may refuse to start, and nothing is open yet.
    const aes = chooseAesGcm(config.crypto.nativeAes);
    // The ports first: a busy one is refused, naming its address, before anything is made in
    // the data dir (its first start would otherwise leave a key and an empty store behind).
    const listeners = Listeners.open(config);
    const metrics = new ServerMetrics();
    metrics.aesInUse(aes, aesGcm().library, aesGcm().version);
    const restoreInvariants = options.strictInvariants ? () => {} : onInvariantBroken((what) => {
      metrics.invariantBroken();
      log.error("invariant.broken", { what });
    });
    // The store next: it locks the data dir, so a second server started on the same dir is
    // refused as such before it reads or makes the identity key.
    // A cluster node keeps its data in NATS JetStream, and takes the cluster's identity key.
    let store: Store;
    let node: ClusterNode | null = null;
    try {
      if (config.cluster.nats.length > 0) {
        node = await joinCluster(config, log, clock, metrics);
        store = node.store;
      } else {
        store = await openKvStore(config.dataDir, {
          worldBacklog: config.world.backlog,
          onCommit: (seconds) => metrics.kvCommit(seconds),
          clock,
        });
      }
    } catch (e) {
      listeners.close();
      restoreInvariants();
      throw e;
    }
    let identity: KeyPair;
    let assets: AssetTable | null = null;
    try {
      if (node) identity = node.identity;
      else {
        await warnIfExposed(config.dataDir, log);
        identity = await loadOrCreateIdentity(config.dataDir);
      }
      if (listeners.web) assets = options.webAssets ?? await loadAssets();
    } catch (e) {
      listeners.close();
      restoreInvariants();
      await (node ? node.close() : store.close());
      throw e;
    }
    const ctx = createContext(config, store, log, metrics, clock, node);
    if (node) await node.hub.start();
    const print = fingerprint(identity.publicKey);
    const addr = listeners.chatAddr;
    const web = listeners.web && webAddress(listeners.web.addr as Deno.NetAddr, config.web.tls);
    log.info("server.listening", {
      addr: `${addr.hostname}:${addr.port}`,
      web: web?.url,
      web_note: web?.note,
      fingerprint: print,
      aes,
      // Whether this process could still load native code (docs/operating.md, Security model).
      native_code: Deno.permissions.querySync({ name: "ffi" }).state === "granted" ||
          Deno.permissions.querySync({ name: "run" }).state === "granted"
        ? "allowed"
        : "given_up",
    });
    if (assets && assets.missing.length > 0) {
      log.warn("web.not_built", {
        missing: assets.missing.join(","),
        advice: "deno task web:build",
      });
    }
    return new ParleyServer(
      ctx,
      node,
      listeners,
      identity,
      print,
      clock,
      restoreInvariants,
      options.idleCollection,
      assets,
    );
  }

  /** Starts the keepalive, the HTTP endpoint and the chat accept loop. */
  private constructor(
    ctx: ServerContext,
    /** The cluster this server is a node of; null for one server on Deno KV. */
    private readonly node: ClusterNode | null,
    listeners: Listeners,
    identity: KeyPair,
    print: string,
    clock: Clock,
    /** Puts back the invariant handler that was there before this server. */
    private readonly restoreInvariants: () => void,
    idleCollection: ServerOptions["idleCollection"],
    assets: AssetTable | null,
  ) {
    const { config, log, metrics, store } = ctx;
    this.#ctx = ctx;
    this.#listeners = listeners;
    this.addr = listeners.chatAddr;
    this.fingerprint = print;
    this.#table = new ConnectionTable(config.limits);
    this.#stopKeepalive = startKeepalive(this.#sessions, config.limits, log, clock);
    metrics.readFrom({
      connections: () => this.#table.size,
      online: () => ctx.hub.onlineCount,
      queued: () => store.inbox.queued(),
      outbound: () => ctx.outbound.bytes,
      ...(node && {
        cluster: () => ({
          nodes: node.hub.peers + 1,
          online: node.hub.clusterOnline,
          connected: node.connected,
          reconnects: node.reconnects,
        }),
      }),
    });
    this.#http = listeners.http &&
      serveHttp(
        listeners.http,
        metrics,
        {
          accepting: () => !this.#stopping,
          connections: () => this.#table.size,
          pingStore: () => store.ping(),
          ...(node && {
            cluster: () => ({
              node: node.hub.node,
              connected: node.connected,
              server: node.nc.getServer(),
              peers: node.hub.peers,
            }),
          }),
        },
        log,
        config.http,
        clock,
      );
    this.#lifecycle = new ConnectionLifecycle(ctx, identity, this.#table, this.#sessions, clock);
    const lifecycle = this.#lifecycle;
    this.#web = listeners.web && assets &&
      serveWeb(listeners.web, {
        config: config.web,
        maxMessageBytes: config.limits.maxFrameBytes + WS_MESSAGE_SLACK_BYTES,
        table: this.#table,
        upgrade: (transport, conn, ip) => lifecycle.serveAdmitted(transport, conn, ip),
        assets,
        log,
        metrics,
        clock,
      });
    const collect = idleCollection?.collect ?? reducingCollection();
    this.#collector = collect && new IdleCollector({
      clock,
      log,
      heapUsed: idleCollection?.heapUsed ?? (() => Deno.memoryUsage().heapUsed),
      framesRead: () => lifecycle.framesRead,
      outboundBytes: () => ctx.outbound.bytes,
      collect,
      collected: (seconds) => metrics.idleCollected(seconds),
    });
    this.#acceptLoop = acceptEach(
      listeners.chat,
      () => this.#stopping,
      log,
      "listener.accept_failed",
      (conn) => this.#lifecycle.accept(conn),
    );
  }

  get webUrl(): string | null {
    if (!this.#web) return null;
    return webAddress(this.#web.addr, this.#ctx.config.web.tls).url;
  }

  get httpAddr(): Deno.NetAddr | null {
    return this.#http?.addr ?? null;
  }

  outboundBytes(): number {
    return this.#ctx.outbound.bytes;
  }

  /** Shuts down once; later calls get the same promise. */
  close(): Promise<void> {
    return this.#closing ??= this.#shutDown();
  }

  /**
   * Stop accepting, tell every session SHUTTING_DOWN, close the connections and give their
   * serving a grace period to end, close the store, and the HTTP endpoint last, so that
   * /healthz answers 503 while the server drains.
   */
  async #shutDown(): Promise<void> {
    const { log, hub, store } = this.#ctx;
    this.#stopping = true;
    this.#stopKeepalive();
    this.#collector?.stop();
    log.info("server.stopping", { online: hub.onlineCount, connections: this.#table.size });
    closeQuietly(this.#listeners.chat);
    await this.#acceptLoop;
    await this.#web?.close();
    // Shutdown waits on the process's time, not the injected clock: it must end even when a
    // test's clock stands still with a reply held for a deferred commit.
    await withinMs(this.#sessions.notifyShutdown(), SHUTDOWN_NOTICE_MS + 500);
    this.#table.closeAll();
    await withinMs(
      Promise.all([this.#lifecycle.ended(), this.#web?.ended()]),
      SHUTDOWN_GRACE_MS,
    );
    await (this.node ? this.node.close() : store.close());
    await this.#http?.close();
    this.restoreInvariants();
    log.info("server.stopped");
  }
}

/**
 * What one WebSocket message may carry beyond the frame limit: a client may send a whole frame
 * (its length header and tag included) and a little of the next in one message.
 */
const WS_MESSAGE_SLACK_BYTES = 64 * 1024;

/**
 * The web port's URL, and for plain HTTP on an address other than loopback, why browsers will
 * not run the client from it: WebCrypto is given only to secure contexts (HTTPS or loopback).
 */
export function webAddress(
  addr: Deno.NetAddr,
  tls: unknown,
): { url: string; note?: string } {
  const scheme = tls === null ? "http" : "https";
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `${scheme}://${host}:${addr.port}/`;
  if (scheme === "https" || isLoopback(addr.hostname)) return { url };
  return {
    url,
    note: "browsers give WebCrypto only to secure contexts, so they will refuse the client " +
      "over plain HTTP from this address: set web.tls (--web-cert, --web-key) or put an " +
      "HTTPS reverse proxy in front (docs/operating.md)",
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** Resolves when `work` has, or after `ms` of the process's time, whichever comes first. */
async function withinMs(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([work, new Promise((r) => timer = setTimeout(r, ms))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What every handler gets. The hub comes first, so that the file relay built on it is in the
 * context from the start.
 */
function createContext(
  config: Config,
  store: Store,
  log: Logger,
  metrics: ServerMetrics,
  clock: Clock,
  node: ClusterNode | null,
): ServerContext {
  const { accounts } = config;
  const hub = node?.hub ?? new LocalHub(metrics);
  const files = node
    ? new ClusterFileRelay(node.hub, node.bus, log, config.files, config.limits.maxFileBytes)
    : new FileRelay(hub, config.files, config.limits.maxFileBytes);
  const ctx: ServerContext = {
    config,
    store,
    hub,
    hasher: new PasswordHasher({
      params: accounts.scrypt,
      concurrency: accounts.hashConcurrency,
      queue: accounts.hashQueue,
    }),
    log,
    files,
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
  if (node && files instanceof ClusterFileRelay) {
    files.start();
    node.hub.events = clusterEvents(ctx, node.hub);
  }
  return ctx;
}

/** What this node does when another node acts on its sessions (cluster/cluster_hub.ts). */
function clusterEvents(ctx: ServerContext, hub: ClusterHub): ClusterEvents {
  return {
    takenOver(session, family) {
      const login = session.login;
      if (!login) return;
      ctx.files.endAllOf(login.user, `${login.name} logged in from another place`);
      replaced(ctx, session, family, null);
    },
    end(session, reason) {
      void endSession(ctx, session, reason).catch((e) =>
        ctx.log.error("session.end_failed", { error: (e as Error).message })
      );
    },
    async recheck(tokens, signal) {
      const started = performance.now();
      const { checked, ended, stopped } = await recheckSessions(
        ctx,
        hub.attachedSessions(),
        tokens,
        signal,
      );
      ctx.log.info("cluster.rechecked", {
        sessions: checked,
        ended,
        tokens,
        stopped,
        ms: Math.round(performance.now() - started),
      });
    },
    wentOffline({ user, name }, nodeGone) {
      ctx.files.endAllOf(user, `${name} went offline`);
      if (!nodeGone) return;
      tellLocalFriends(ctx, user, name).catch((e) =>
        ctx.log.error("presence.failed", { user, error: (e as Error).message })
      );
    },
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
