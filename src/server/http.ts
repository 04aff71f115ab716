/**
 * The operator's HTTP endpoint, off unless configured: GET /healthz for load balancers and
 * supervisors, GET /metrics for Prometheus. It has no authentication, so it listens on loopback
 * by default; it is not part of the chat protocol.
 *
 * A small HTTP/1.1 responder over Deno.listen rather than Deno.serve: Deno.serve has no cap on
 * connections and no deadline for a request's head, so half-sent requests could hold descriptors
 * without end, and its accept error, once descriptors ran out, escaped and ended the process.
 * Here each connection carries one request (then `connection: close`), the number of
 * connections is capped, each has a deadline, and a failed accept is logged and survived.
 */

import { type Clock, systemClock } from "../clock/clock.ts";
import { acceptEach, closeQuietly } from "./accept.ts";
import { CONTENT_TYPE } from "../metrics/exposition.ts";
import { VERSION } from "../version.ts";
import type { Logger } from "./log.ts";
import type { ServerMetrics } from "./metrics.ts";

/** What /healthz asks of the running server. */
export interface HealthSource {
  /** False once the server has begun to shut down. */
  accepting(): boolean;
  connections(): number;
  /** A cheap store read; rejects when the store does not answer. */
  pingStore(): Promise<void>;
  /** A cluster node's NATS link and peers; absent for one server on Deno KV. */
  cluster?(): ClusterHealth;
}

export interface ClusterHealth {
  node: string;
  /** Whether the NATS connection is up (it reconnects by itself when it is not). */
  connected: boolean;
  /** The NATS server it is connected to. */
  server: string;
  /** Other nodes heard from lately. */
  peers: number;
}

export interface HttpEndpoint {
  /** The address actually bound (port 0 becomes a free port). */
  addr: Deno.NetAddr;
  /** Stops listening; in-flight requests get a moment to finish. */
  close(): Promise<void>;
}

export interface HttpLimits {
  /** Connections served at once; more are closed as soon as they are accepted. */
  maxConnections: number;
  /** From accept to the last byte of the answer; a connection still open then is closed. */
  requestTimeoutMs: number;
}

/** A request line and a few headers; a GET of two paths needs no more. */
export const HTTP_MAX_HEAD_BYTES = 8192;
/** What is read and dropped after the answer (a refused POST's body) before closing anyway. */
const HTTP_MAX_DRAIN_BYTES = 64 * 1024;
/** How long close() waits for in-flight requests before it lets the listener go regardless. */
const CLOSE_GRACE_MS = 1000;

const NO_STORE = { "cache-control": "no-store" };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { ...NO_STORE, "content-type": "application/json; charset=utf-8" },
  });
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { ...NO_STORE, "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** The routes, apart from the listener so that they can be exercised without a socket. */
export function httpHandler(
  metrics: ServerMetrics,
  health: HealthSource,
  log: Logger,
): (req: Request) => Promise<Response> {
  const healthz = async (): Promise<Response> => {
    const body = {
      status: "ok",
      version: VERSION,
      uptime_seconds: Math.floor(metrics.uptimeSeconds),
      connections: health.connections(),
    };
    if (!health.accepting()) return json(503, { ...body, status: "shutting_down" });
    const cluster = health.cluster?.();
    if (cluster) {
      const nats = cluster.connected ? "connected" : "disconnected";
      Object.assign(body, { cluster: { ...cluster, connected: undefined, nats } });
      // A node without NATS can serve nobody: the load balancer should send clients elsewhere.
      if (!cluster.connected) return json(503, { ...body, status: "nats_unavailable" });
    }
    try {
      await health.pingStore();
    } catch (e) {
      log.warn("http.health_store_failed", { error: (e as Error).message });
      return json(503, { ...body, status: "store_unavailable" });
    }
    return json(200, body);
  };
  const scrape = async (): Promise<Response> =>
    new Response(await metrics.render(), {
      headers: { ...NO_STORE, "content-type": CONTENT_TYPE },
    });
  const routes: Record<string, () => Promise<Response>> = {
    "/healthz": healthz,
    "/metrics": scrape,
  };

  return async (req) => {
    const path = new URL(req.url).pathname;
    if (!Object.hasOwn(routes, path)) return text(404, "Not found\n");
    if (req.method !== "GET" && req.method !== "HEAD") {
      return text(405, "Only GET and HEAD\n", { allow: "GET, HEAD" });
    }
    const res = await routes[path]();
    if (req.method !== "HEAD") return res;
    // HEAD: the same status and headers as GET, the GET's length included, and no body.
    const length = (await res.arrayBuffer()).byteLength;
    const headers = new Headers(res.headers);
    headers.set("content-length", String(length));
    return new Response(null, { status: res.status, headers });
  };
}

const encoder = new TextEncoder();
const HEAD_END = encoder.encode("\r\n\r\n");

/** Where the head ends (just past its blank line) in `buf`, or -1. */
function headEnd(buf: Uint8Array, length: number): number {
  outer: for (let i = 0; i + HEAD_END.length <= length; i++) {
    for (let j = 0; j < HEAD_END.length; j++) if (buf[i + j] !== HEAD_END[j]) continue outer;
    return i + HEAD_END.length;
  }
  return -1;
}

/** Reads a request's head; null if the peer closed first or sent more than the limit. */
async function readHead(conn: Deno.Conn): Promise<string | null> {
  const buf = new Uint8Array(HTTP_MAX_HEAD_BYTES);
  let filled = 0;
  while (filled < buf.length) {
    const n = await conn.read(buf.subarray(filled));
    if (n === null) return null;
    const searchFrom = Math.max(0, filled - HEAD_END.length);
    filled += n;
    const end = headEnd(buf.subarray(searchFrom), filled - searchFrom);
    if (end >= 0) return new TextDecoder().decode(buf.subarray(0, searchFrom + end));
  }
  return null;
}

/** The request line's method and path, or null if it is not one. */
function parseRequestLine(head: string): { method: string; path: string } | null {
  const line = head.slice(0, head.indexOf("\r\n"));
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line);
  if (!m) return null;
  let path: string;
  try {
    path = new URL(m[2], "http://localhost").pathname;
  } catch {
    return null;
  }
  return { method: m[1], path };
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

async function writeResponse(conn: Deno.Conn, res: Response): Promise<void> {
  const body = res.body === null ? new Uint8Array(0) : new Uint8Array(await res.arrayBuffer());
  const headers = new Headers(res.headers);
  if (!headers.has("content-length")) headers.set("content-length", String(body.length));
  headers.set("connection", "close");
  let head = `HTTP/1.1 ${res.status} ${REASONS[res.status] ?? "Status"}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  const bytes = encoder.encode(head + "\r\n");
  const out = new Uint8Array(bytes.length + body.length);
  out.set(bytes);
  out.set(body, bytes.length);
  let written = 0;
  while (written < out.length) written += await conn.write(out.subarray(written));
}

/** Reads and drops what the peer still sends, up to a bound, until it closes. */
async function drain(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(4096);
  for (let total = 0; total < HTTP_MAX_DRAIN_BYTES;) {
    const n = await conn.read(buf);
    if (n === null) return;
    total += n;
  }
}

/** Binds `host:port`. Throws like Deno.listen (AddrInUse, PermissionDenied). */
export function listenHttp(opts: { host: string; port: number }): Deno.TcpListener {
  return Deno.listen({ hostname: opts.host, port: opts.port });
}

/** Serves the routes on `listener` until close(). */
export function serveHttp(
  listener: Deno.TcpListener,
  metrics: ServerMetrics,
  health: HealthSource,
  log: Logger,
  limits: HttpLimits,
  clock: Clock = systemClock,
): HttpEndpoint {
  const handler = httpHandler(metrics, health, log);
  const open = new Map<Deno.Conn, Promise<void>>();
  let stopping = false;
  let refused = 0;
  let refusedLoggedAt = -Infinity;

  const serveOne = async (conn: Deno.Conn): Promise<void> => {
    // The deadline covers the whole exchange: a peer that sends half a head, or never reads
    // the answer, is closed when it passes.
    const timer = clock.setTimer(() => closeQuietly(conn), limits.requestTimeoutMs);
    try {
      const head = await readHead(conn);
      if (head === null) return;
      const request = parseRequestLine(head);
      let res: Response;
      if (request === null) {
        res = text(400, "Bad request\n");
      } else {
        try {
          res = await handler(
            new Request(`http://localhost${request.path}`, { method: request.method }),
          );
        } catch (e) {
          log.error("http.failed", { error: e instanceof Error ? e.message : String(e) });
          res = text(500, "Internal error\n");
        }
      }
      await writeResponse(conn, res);
      // Closing with unread input (a POST's body, say) would reset the connection and could
      // discard the answer: end our side, then let the peer close (within the deadline).
      await conn.closeWrite();
      await drain(conn);
    } catch {
      // The peer went away or the deadline closed the connection: nothing to answer.
    } finally {
      clock.clearTimer(timer);
      closeQuietly(conn);
    }
  };

  const acceptLoop = acceptEach(listener, () => stopping, log, "http.accept_failed", (conn) => {
    if (open.size >= limits.maxConnections) {
      // Logged at most once a second, with a count: a flood must not flood the log as well.
      refused++;
      const now = clock.now();
      if (now - refusedLoggedAt >= 1000) {
        log.warn("http.refused", { open: open.size, refused });
        refused = 0;
        refusedLoggedAt = now;
      }
      closeQuietly(conn);
      return;
    }
    const done = serveOne(conn).finally(() => open.delete(conn));
    open.set(conn, done);
  });

  const addr = listener.addr as Deno.NetAddr;
  log.info("http.listening", { addr: `${addr.hostname}:${addr.port}` });
  return {
    addr,
    close: async () => {
      stopping = true;
      closeQuietly(listener);
      await acceptLoop;
      // On the process's timers, not the clock: shutdown must end even where a test's clock
      // stands still.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled(open.values()),
        new Promise((r) => timer = setTimeout(r, CLOSE_GRACE_MS)),
      ]);
      clearTimeout(timer);
      for (const conn of open.keys()) closeQuietly(conn);
    },
  };
}
