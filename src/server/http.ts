/**
 * The operator's HTTP endpoint, off unless configured: GET /healthz for load balancers and
 * supervisors, GET /metrics for Prometheus. It has no authentication, so it listens on loopback
 * by default; it is not part of the chat protocol.
 */

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
}

export interface HttpEndpoint {
  /** The address actually bound (port 0 becomes a free port). */
  addr: Deno.NetAddr;
  /** Stops listening; in-flight requests get a moment to finish. */
  close(): Promise<void>;
}

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
    // HEAD: the same status and headers, no body.
    return req.method === "HEAD" ? new Response(null, res) : res;
  };
}

/** Listens on `host:port` until close(). Throws like Deno.listen (AddrInUse, PermissionDenied). */
export function startHttp(
  opts: { host: string; port: number },
  metrics: ServerMetrics,
  health: HealthSource,
  log: Logger,
): HttpEndpoint {
  const handler = httpHandler(metrics, health, log);
  const server = Deno.serve({
    hostname: opts.host,
    port: opts.port,
    // The server logs its own line with the bound address, in its own format.
    onListen: () => {},
    onError: (e) => {
      log.error("http.failed", { error: e instanceof Error ? e.message : String(e) });
      return text(500, "Internal error\n");
    },
  }, handler);
  const addr = server.addr as Deno.NetAddr;
  log.info("http.listening", { addr: `${addr.hostname}:${addr.port}` });
  return {
    addr,
    close: async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        server.shutdown(),
        new Promise((r) => timer = setTimeout(r, CLOSE_GRACE_MS)),
      ]);
      clearTimeout(timer);
    },
  };
}
