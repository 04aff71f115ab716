/**
 * The server's metrics, named `parley_*`. Events on the hot path (a message in or out, a
 * commit) update a child resolved here at start: a number update, no map lookup, no allocation.
 * Levels that the server already knows (connections, users online, queued messages, memory)
 * are read when scraped rather than kept up to date on every event.
 */

import { renderExposition } from "../metrics/exposition.ts";
import { type Counter, type Family, type Histogram, Registry } from "../metrics/registry.ts";
import { ErrorCode, errorCodeName } from "../protocol/errors.ts";
import type { ChatMessage } from "../store/types.ts";
import { VERSION } from "../version.ts";

export type LoginMethod = "password" | "resume";
/** Why a frame closed its connection: over the size limit, or failing authentication. */
export type FrameRejection = "size" | "auth";
/** Why the web port refused a WebSocket upgrade: a foreign Origin, or a malformed request. */
export type WebRefusal = "origin" | "request";
type Conversation = "private" | "group" | "world";
type Content = ChatMessage["kind"];
type ByMessage = Record<Conversation, Record<Content, Counter>>;

const CONVERSATIONS: Conversation[] = ["private", "group", "world"];
const CONTENTS: Content[] = ["text", "image"];
const LOGIN_METHODS: LoginMethod[] = ["password", "resume"];

/** From a tenth of a millisecond (a commit costs ~0.25 ms) to seconds (a stalled disk). */
const COMMIT_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** What the server reads for the gauges at each scrape. */
export interface ScrapeSources {
  /** Open connections (chat and web ports), handshake done or not. */
  connections(): number;
  /** Users logged in. */
  online(): number;
  /** Sealed bytes waiting for clients' sockets. */
  outbound(): number;
  /** Messages and bytes waiting in offline inboxes. */
  queued(): Promise<{ count: number; bytes: number }>;
  /** A cluster node's figures; absent for one server. */
  cluster?(): { nodes: number; online: number; connected: boolean; reconnects: number };
}

function conversationOf(m: ChatMessage): Conversation {
  return m.world ? "world" : m.group ? "group" : "private";
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #startedAt = performance.now();
  readonly #in: ByMessage;
  readonly #out: ByMessage;
  readonly #fileChunks: Counter;
  readonly #fileBytes: Counter;
  readonly #handshakeFailures: Counter;
  readonly #rateLimited: Counter;
  readonly #framesRejected: Record<FrameRejection, Counter>;
  readonly #failureFamily: Family<Counter>;
  /** By wire code; every code of the table is there from the start, so scrapes see zeros. */
  readonly #failures = new Map<number, Counter>();
  readonly #logins: Record<LoginMethod, Counter>;
  readonly #loginFailures: Record<LoginMethod, Counter>;
  readonly #commitSeconds: Histogram;
  readonly #invariantViolations: Counter;
  readonly #idleCollections: Counter;
  readonly #idleCollectionSeconds: Counter;
  readonly #webUpgrades: Counter;
  readonly #webRefused: Record<WebRefusal, Counter>;

  constructor() {
    const r = this.registry;
    r.gauge("parley_build_info", "Always 1; the version is in the label.", ["version"])
      .labels({ version: VERSION }).set(1);
    const uptime = r.gauge("parley_uptime_seconds", "Seconds since the server started.").labels();
    r.beforeCollect(() => uptime.set(this.uptimeSeconds));

    const byMessage = (name: string, help: string): ByMessage => {
      const family = r.counter(name, help, ["conversation", "content"]);
      const table = {} as ByMessage;
      for (const conversation of CONVERSATIONS) {
        table[conversation] = {} as Record<Content, Counter>;
        for (const content of CONTENTS) {
          table[conversation][content] = family.labels({ conversation, content });
        }
      }
      return table;
    };
    this.#in = byMessage(
      "parley_messages_in_total",
      "Chat messages accepted from senders (answered with SENT).",
    );
    this.#out = byMessage(
      "parley_messages_out_total",
      "Chat messages pushed to recipients (PASS), redeliveries included.",
    );
    this.#fileChunks = r.counter("parley_file_chunks_total", "File chunks relayed.").labels();
    this.#fileBytes = r.counter("parley_file_bytes_total", "File bytes relayed.").labels();

    const byMethod = (name: string, help: string) => {
      const family = r.counter(name, help, ["method"]);
      const table = {} as Record<LoginMethod, Counter>;
      for (const method of LOGIN_METHODS) table[method] = family.labels({ method });
      return table;
    };
    this.#logins = byMethod(
      "parley_logins_total",
      "Successful logins, by password or resume token.",
    );
    this.#loginFailures = byMethod(
      "parley_login_failures_total",
      "Logins refused for an unknown user, a wrong password or a bad resume token.",
    );

    this.#handshakeFailures = r.counter(
      "parley_handshake_failures_total",
      "Connections that failed or abandoned the handshake.",
    ).labels();
    this.#failureFamily = r.counter(
      "parley_request_failures_total",
      "Requests answered with an error, by error code.",
      ["code"],
    );
    for (const code of Object.values(ErrorCode)) {
      this.#failures.set(code, this.#failureFamily.labels({ code: errorCodeName(code) }));
    }
    this.#rateLimited = r.counter(
      "parley_rate_limited_requests_total",
      "Requests refused by the per-connection rate limit (also in request failures).",
    ).labels();

    const rejected = r.counter(
      "parley_frames_rejected_total",
      "Frames that closed their connection: over the frame size limit, or failing authentication.",
      ["reason"],
    );
    this.#framesRejected = {
      size: rejected.labels({ reason: "size" }),
      auth: rejected.labels({ reason: "auth" }),
    };

    this.#commitSeconds = r.histogram(
      "parley_kv_commit_seconds",
      "Time per group commit to the KV store.",
      COMMIT_BUCKETS,
    ).labels();

    this.#invariantViolations = r.counter(
      "parley_invariant_violations_total",
      "Checks of the server's own bookkeeping that failed: each is a bug, logged as invariant.broken.",
    ).labels();

    this.#idleCollections = r.counter(
      "parley_idle_collections_total",
      "Heap collections run because the server went quiet after its heap grew (idle_collector.ts).",
    ).labels();
    this.#idleCollectionSeconds = r.counter(
      "parley_idle_collection_seconds_total",
      "Time the server paused for those collections.",
    ).labels();

    this.#webUpgrades = r.counter(
      "parley_web_upgrades_total",
      "WebSockets opened on the web port (each then counts as a connection).",
    ).labels();
    const refused = r.counter(
      "parley_web_upgrades_refused_total",
      "WebSocket upgrades refused: a page of a foreign origin, or a malformed request.",
      ["reason"],
    );
    this.#webRefused = {
      origin: refused.labels({ reason: "origin" }),
      request: refused.labels({ reason: "request" }),
    };

    const memory = (name: string, help: string) => r.gauge(name, help).labels();
    const rss = memory("parley_process_resident_memory_bytes", "Resident set size.");
    const heapTotal = memory("parley_process_heap_total_bytes", "V8 heap reserved.");
    const heapUsed = memory("parley_process_heap_used_bytes", "V8 heap in use.");
    const external = memory("parley_process_external_memory_bytes", "Memory outside the V8 heap.");
    r.beforeCollect(() => {
      const m = Deno.memoryUsage();
      rss.set(m.rss);
      heapTotal.set(m.heapTotal);
      heapUsed.set(m.heapUsed);
      external.set(m.external);
    });
  }

  /**
   * `parley_aes_info`: which AES-256-GCM implementation seals frames ("openssl" or
   * "node:crypto"), and for OpenSSL the library file and its version, as the operator's check.
   */
  aesInUse(implementation: string, library = "", version = ""): void {
    this.registry.gauge(
      "parley_aes_info",
      "Always 1; the AES-GCM implementation in use, its library and version are in the labels.",
      ["implementation", "library", "version"],
    ).labels({ implementation, library, version }).set(1);
  }

  /** Adds the gauges read from the running server; called once it is up. */
  readFrom(sources: ScrapeSources): void {
    const r = this.registry;
    const connections = r.gauge(
      "parley_connections",
      "Open connections, chat port and web port together.",
    ).labels();
    const online = r.gauge("parley_users_online", "Users logged in.").labels();
    const queued = r.gauge(
      "parley_queued_messages",
      "Messages waiting for their recipients, in the inboxes read or written since start.",
    ).labels();
    const queuedBytes = r.gauge(
      "parley_queued_bytes",
      "Bytes of the queued messages, as counted against queue limits.",
    ).labels();
    const outbound = r.gauge(
      "parley_outbound_bytes",
      "Encrypted bytes waiting for clients' sockets, all connections together.",
    ).labels();
    const cluster = sources.cluster && {
      read: sources.cluster,
      nodes: r.gauge(
        "parley_cluster_nodes",
        "Nodes of the cluster this node hears, itself included.",
      )
        .labels(),
      online: r.gauge("parley_cluster_users_online", "Users logged in on any node of the cluster.")
        .labels(),
      connected: r.gauge("parley_nats_connected", "1 while the NATS connection is up, else 0.")
        .labels(),
      reconnects: r.counter("parley_nats_reconnects_total", "NATS reconnections since start.")
        .labels(),
      counted: 0,
    };
    r.beforeCollect(async () => {
      if (cluster) {
        const c = cluster.read();
        cluster.nodes.set(c.nodes);
        cluster.online.set(c.online);
        cluster.connected.set(c.connected ? 1 : 0);
        cluster.reconnects.inc(c.reconnects - cluster.counted);
        cluster.counted = c.reconnects;
      }
      outbound.set(sources.outbound());
      connections.set(sources.connections());
      online.set(sources.online());
      const q = await sources.queued();
      queued.set(q.count);
      queuedBytes.set(q.bytes);
    });
  }

  get uptimeSeconds(): number {
    return (performance.now() - this.#startedAt) / 1000;
  }

  /** The exposition text of every metric. */
  async render(): Promise<string> {
    return renderExposition(await this.registry.collect());
  }

  messageIn(m: ChatMessage): void {
    this.#in[conversationOf(m)][m.kind].inc();
  }

  messageOut(m: ChatMessage): void {
    this.#out[conversationOf(m)][m.kind].inc();
  }

  fileChunk(bytes: number): void {
    this.#fileChunks.inc();
    this.#fileBytes.inc(bytes);
  }

  handshakeFailed(): void {
    this.#handshakeFailures.inc();
  }

  requestFailed(code: number): void {
    let counter = this.#failures.get(code);
    if (!counter) {
      counter = this.#failureFamily.labels({ code: errorCodeName(code) });
      this.#failures.set(code, counter);
    }
    counter.inc();
  }

  rateLimited(): void {
    this.#rateLimited.inc();
    this.requestFailed(ErrorCode.RATE_LIMITED);
  }

  frameRejected(reason: FrameRejection): void {
    this.#framesRejected[reason].inc();
  }

  login(method: LoginMethod): void {
    this.#logins[method].inc();
  }

  loginFailed(method: LoginMethod): void {
    this.#loginFailures[method].inc();
  }

  kvCommit(seconds: number): void {
    this.#commitSeconds.observe(seconds);
  }

  invariantBroken(): void {
    this.#invariantViolations.inc();
  }

  webUpgraded(): void {
    this.#webUpgrades.inc();
  }

  webUpgradeRefused(reason: WebRefusal): void {
    this.#webRefused[reason].inc();
  }

  idleCollected(seconds: number): void {
    this.#idleCollections.inc();
    this.#idleCollectionSeconds.inc(seconds);
  }
}
