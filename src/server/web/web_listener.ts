/**
 * The web port: the browser client's files, and its chat connection as a WebSocket on
 * `WS_PATH`. Built like the chat port rather than on Deno.serve (see ../http.ts for why): its
 * own accept loop, every connection counted in the chat port's ConnectionTable from accept
 * (so the per-address and total caps count browsers too), a deadline and a size limit on each
 * request head (408 and 431), and a failed accept logged and survived.
 *
 * An upgraded connection is handed to the lifecycle as a Transport: from then on it is served
 * exactly as a TCP chat connection is, and released from the table when that ends.
 */

import type { Clock, TimerHandle } from "../../clock/clock.ts";
import { canonicalOrigin, type Config, isIpAddress } from "../../config/config.ts";
import type { Transport } from "../../transport/transport.ts";
import { acceptEach, closeQuietly } from "../accept.ts";
import type { ConnectionTable } from "../connection_table.ts";
import type { Logger } from "../log.ts";
import type { ServerMetrics } from "../metrics.ts";
import { peerKey } from "../peer_key.ts";
import type { AssetTable } from "./assets.ts";
import {
  hasBareLf,
  headEnd,
  HeadError,
  listsToken,
  parseHead,
  type RequestHead,
  WEB_MAX_HEAD_BYTES,
} from "./http_head.ts";
import { acceptKey, isClientKey } from "./ws_frames.ts";
import { WebSocketServerTransport } from "./ws_transport.ts";

/** The one path that upgrades to the chat WebSocket. */
export const WS_PATH = "/ws";

/** Requests served on one kept-alive connection before it is closed (the browser reconnects). */
const MAX_REQUESTS_PER_CONNECTION = 100;

/** After a head's deadline, how long the 408 may take to leave before the socket is closed. */
const TIMEOUT_ANSWER_GRACE_MS = 1000;

/**
 * After a refusal, what is read and dropped (the rest of an oversize head, a body) before the
 * socket is closed: closing with unread input would reset the connection, and the peer could
 * lose the answer before reading it.
 */
const MAX_DRAIN_BYTES = 64 * 1024;
/** How long that draining may take. */
const DRAIN_MS = 2000;

/**
 * The page may load only its own script and style, show images it made itself (blob:, data:),
 * talk only to its own origin (and to the other nodes' WebSockets in `web.alternates`), and be
 * framed by no one.
 */
export function contentSecurityPolicy(alternates: readonly string[] = []): string {
  return "default-src 'none'; script-src 'self'; " +
    `style-src 'self'; img-src 'self' blob: data:; connect-src ${
      ["'self'", ...alternates].join(" ")
    }; ` +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
}

export const CONTENT_SECURITY_POLICY = contentSecurityPolicy();

/** On every answer of the web port, files and errors alike. No cookie is ever set. */
function securityHeaders(alternates: readonly string[] = []): [string, string][] {
  return [
    ["content-security-policy", contentSecurityPolicy(alternates)],
    ["x-content-type-options", "nosniff"],
    ["referrer-policy", "no-referrer"],
    ["x-frame-options", "DENY"],
    ["cross-origin-opener-policy", "same-origin"],
    ["cross-origin-resource-policy", "same-origin"],
  ];
}

const SECURITY_HEADERS = securityHeaders();

/**
 * Where the page learns the other nodes' WebSockets (`web.alternates`): `{"alternates": [URL…]}`,
 * fetched at start, so that it can resume its session at another node when this one goes away.
 */
export const ALTERNATES_PATH = "/alternates.json";

/** The answer to ALTERNATES_PATH. */
export function alternatesAnswer(alternates: readonly string[], head: RequestHead): Answer {
  if (head.method !== "GET" && head.method !== "HEAD") {
    return textAnswer(405, "Only GET and HEAD\n", [["allow", "GET, HEAD"]]);
  }
  return {
    status: 200,
    headers: [["content-type", "application/json"], ["cache-control", "no-cache"]],
    body: encoder.encode(JSON.stringify({ alternates })),
    omitBody: head.method === "HEAD",
  };
}

const REASONS: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

export interface WebOptions {
  config: Config["web"];
  /** Payload one WebSocket message may carry at most (tied to the chat's frame limit). */
  maxMessageBytes: number;
  /** The chat port's table: web connections count against the same caps. */
  table: ConnectionTable;
  /** Serves an upgraded, admitted connection as a chat connection (and releases it at the end). */
  upgrade(transport: Transport, conn: Deno.Conn, ip: string): void;
  assets: AssetTable;
  log: Logger;
  metrics: ServerMetrics;
  clock: Clock;
}

export interface WebEndpoint {
  addr: Deno.NetAddr;
  /** "https" with web.tls, else "http". */
  scheme: "http" | "https";
  /** Stops accepting; the connections still open are the table's to close. */
  close(): Promise<void>;
  /** Resolves once every connection not yet upgraded has ended. */
  ended(): Promise<void>;
}

const encoder = new TextEncoder();

interface Answer {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  /** HEAD: the headers of the GET (its length included), no body. */
  omitBody?: boolean;
}

function textAnswer(status: number, text: string, headers: [string, string][] = []): Answer {
  return {
    status,
    headers: [
      ["content-type", "text/plain; charset=utf-8"],
      ["cache-control", "no-store"],
      ...headers,
    ],
    body: encoder.encode(text),
  };
}

/** The bytes of an answer; `keepAlive` false adds `connection: close`. */
export function encodeAnswer(
  a: Answer,
  keepAlive: boolean,
  security: [string, string][] = SECURITY_HEADERS,
): Uint8Array {
  let head = `HTTP/1.1 ${a.status} ${REASONS[a.status] ?? "Status"}\r\n`;
  const headers = a.status === 101 ? a.headers : [...a.headers, ...security];
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  if (a.status !== 101 && a.status !== 304) head += `content-length: ${a.body.length}\r\n`;
  if (!keepAlive && a.status !== 101) head += "connection: close\r\n";
  const headBytes = encoder.encode(head + "\r\n");
  const body = a.omitBody || a.status === 304 ? new Uint8Array(0) : a.body;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

/** Files are revalidated (their names carry no hash); ETags make that a 304. */
function cacheControlOf(contentType: string): string {
  return contentType.startsWith("image/") || contentType.startsWith("font/")
    ? "public, max-age=86400"
    : "no-cache";
}

const NOT_BUILT = "The Parley web client is not built on this server: the operator runs " +
  "`deno task web:build` (or uses a release binary), then restarts the server.\n";

/** The answer to a request for a file. */
export function fileAnswer(assets: AssetTable, head: RequestHead): Answer {
  const path = head.path === "/" ? "/index.html" : head.path;
  if (head.method !== "GET" && head.method !== "HEAD") {
    return textAnswer(405, "Only GET and HEAD\n", [["allow", "GET, HEAD"]]);
  }
  const asset = assets.get(path);
  if (asset === undefined) {
    if (assets.missing.length > 0 && (path === "/index.html" || assets.missing.includes(path))) {
      return textAnswer(503, NOT_BUILT);
    }
    return textAnswer(404, "Not found\n");
  }
  const gzip = asset.gzip && acceptsGzip(head.headers.get("accept-encoding")) ? asset.gzip : null;
  const etag = gzip?.etag ?? asset.etag;
  const headers: [string, string][] = [
    ["content-type", asset.contentType],
    ["cache-control", cacheControlOf(asset.contentType)],
    ["etag", etag],
  ];
  if (asset.gzip) headers.push(["vary", "accept-encoding"]);
  if (gzip) headers.push(["content-encoding", "gzip"]);
  if (listsToken(head.headers.get("if-none-match"), etag)) {
    return { status: 304, headers, body: new Uint8Array(0) };
  }
  const body = gzip?.bytes ?? asset.bytes;
  return { status: 200, headers, body, omitBody: head.method === "HEAD" };
}

/** Whether an Accept-Encoding value takes gzip: named (or "*") without q=0. */
export function acceptsGzip(value: string | undefined): boolean {
  if (value === undefined) return false;
  return value.split(",").some((part) => {
    const [name, ...params] = part.split(";").map((t) => t.trim().toLowerCase());
    if (name !== "gzip" && name !== "*") return false;
    const q = params.find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** The origin a Host header names under `scheme`, or null if it is not a host[:port]. */
function hostOrigin(scheme: string, host: string | undefined): string | null {
  if (
    host === undefined || !/^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)
  ) {
    return null;
  }
  return canonicalOrigin(`${scheme}://${host}`);
}

/**
 * Whether a page of `origin` may open the chat WebSocket: it must be the origin the request
 * came to (same scheme and Host), or one the operator listed (a reverse proxy's public name).
 */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  scheme: "http" | "https",
  extra: readonly string[],
): boolean {
  if (origin === undefined) return false;
  const own = hostOrigin(scheme, host);
  return (own !== null && origin.toLowerCase() === own) || extra.includes(origin);
}

/** The upgrade's answer: 101 and the transport's first bytes, or a refusal. */
function upgradeAnswer(
  head: RequestHead,
  scheme: "http" | "https",
  origins: readonly string[],
): { answer: Answer; refused?: "origin" | "request" } {
  const h = head.headers;
  if (head.method !== "GET") {
    return { answer: textAnswer(405, "Only GET\n", [["allow", "GET"]]), refused: "request" };
  }
  if (!listsToken(h.get("upgrade"), "websocket") || !listsToken(h.get("connection"), "upgrade")) {
    return {
      answer: textAnswer(
        426,
        "This is the WebSocket of the Parley web client; open / instead.\n",
        [["upgrade", "websocket"]],
      ),
      refused: "request",
    };
  }
  if (head.minor !== 1) return { answer: textAnswer(400, "HTTP/1.1 only\n"), refused: "request" };
  if (h.get("sec-websocket-version") !== "13") {
    return {
      answer: textAnswer(426, "WebSocket version 13 only\n", [["sec-websocket-version", "13"]]),
      refused: "request",
    };
  }
  if (hasBody(head)) {
    // After a 101 the body's bytes would be read as frames the client never framed.
    return { answer: textAnswer(400, "A WebSocket upgrade carries no body\n"), refused: "request" };
  }
  const key = h.get("sec-websocket-key");
  if (!isClientKey(key)) {
    return { answer: textAnswer(400, "No valid Sec-WebSocket-Key\n"), refused: "request" };
  }
  if (!originAllowed(h.get("origin"), h.get("host"), scheme, origins)) {
    return {
      answer: textAnswer(403, "This page's origin may not use this server's WebSocket\n"),
      refused: "origin",
    };
  }
  return {
    answer: {
      status: 101,
      headers: [
        ["upgrade", "websocket"],
        ["connection", "Upgrade"],
        ["sec-websocket-accept", acceptKey(key)],
      ],
      body: new Uint8Array(0),
    },
  };
}

/**
 * The client's address that a trusted reverse proxy names: the last entry of X-Forwarded-For,
 * the one that proxy added (earlier ones come from the client and prove nothing). Null if there
 * is none or it is not an address.
 */
export function forwardedClient(head: RequestHead): string | null {
  const list = head.headers.get("x-forwarded-for");
  if (list === undefined) return null;
  const last = list.slice(list.lastIndexOf(",") + 1).trim();
  return isIpAddress(last) ? last : null;
}

/** An address as one exact key (IPv6 whole, IPv4-mapped as IPv4), to compare addresses. */
function exactAddress(hostname: string): string {
  return peerKey(hostname, 128);
}

/** Whether the connection may carry another request after this one. */
function keepsAlive(head: RequestHead): boolean {
  const connection = head.headers.get("connection");
  if (listsToken(connection, "close")) return false;
  return head.minor === 1 || listsToken(connection, "keep-alive");
}

/** A request with a body: none is expected, so its bytes would be read as the next head. */
function hasBody(head: RequestHead): boolean {
  const length = head.headers.get("content-length");
  return head.headers.has("transfer-encoding") || (length !== undefined && length !== "0");
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** A head read from the connection, and what came after it in the same reads. */
interface ReadHead {
  head: Uint8Array;
  rest: Uint8Array;
}

/**
 * Reads one request head (starting with `carry`, bytes already read); null if the peer closed
 * before sending one. Throws HeadError(431) past the size limit.
 */
async function readHead(conn: Deno.Conn, carry: Uint8Array): Promise<ReadHead | null> {
  const buf = new Uint8Array(WEB_MAX_HEAD_BYTES + 1);
  buf.set(carry);
  let filled = carry.length;
  let end = headEnd(buf, 0, filled);
  let from = 0;
  while (true) {
    if (hasBareLf(buf, from, end < 0 ? filled : end)) {
      throw new HeadError(400, "A line of the request head ends without CRLF");
    }
    if (end >= 0) break;
    if (filled === buf.length) {
      throw new HeadError(431, `The request head is over ${WEB_MAX_HEAD_BYTES} bytes`);
    }
    const n = await conn.read(buf.subarray(filled));
    if (n === null) return null;
    from = filled;
    filled += n;
    end = headEnd(buf, from, filled);
  }
  if (end > WEB_MAX_HEAD_BYTES) {
    throw new HeadError(431, `The request head is over ${WEB_MAX_HEAD_BYTES} bytes`);
  }
  return { head: buf.subarray(0, end), rest: buf.slice(end, filled) };
}

/** Serves the web port on `listener` until close(). */
export function serveWeb(listener: Deno.Listener, opts: WebOptions): WebEndpoint {
  const { table, log, metrics, clock, config } = opts;
  const scheme = config.tls === null ? "http" : "https";
  const open = new Map<Deno.Conn, Promise<void>>();
  let stopping = false;
  const proxies = new Set(config.trustedProxies.map(exactAddress));
  const security = securityHeaders(config.alternates);

  /** One connection's requests until it upgrades, closes, or breaks a rule. */
  const serveConn = async (conn: Deno.Conn, ip: string): Promise<void> => {
    const proxied = proxies.has(exactAddress((conn.remoteAddr as Deno.NetAddr).hostname));
    let upgraded = false;
    /** The last answer was a refusal, and unread input may follow: drain before closing. */
    let drain = false;
    let carry: Uint8Array = new Uint8Array(0);
    try {
      for (let served = 0; served < MAX_REQUESTS_PER_CONNECTION; served++) {
        // One deadline covers the wait for the head and the writing of the answer: a peer that
        // sends half a head, or never reads what it asked for, is closed when it passes.
        let phase: "head" | "answer" = "head";
        const timer: TimerHandle = clock.setTimer(() => {
          if (phase === "head") answerTimeout(conn);
          else closeQuietly(conn);
        }, config.headTimeoutMs);
        let keepAlive = false;
        try {
          let read: ReadHead | null;
          let head: RequestHead;
          try {
            read = await readHead(conn, carry);
            if (read === null) return;
            head = parseHead(read.head);
          } catch (e) {
            if (!(e instanceof HeadError)) throw e;
            phase = "answer";
            log.info("web.bad_request", { peer: ip, status: e.status, error: e.message });
            await writeAll(
              conn,
              encodeAnswer(textAnswer(e.status, e.message + "\n"), false, security),
            );
            drain = true;
            return;
          }
          phase = "answer";
          carry = read.rest;
          if (proxied) {
            // The limits count the proxy's client, not the proxy: each request names it anew,
            // as a proxy may send several clients' requests over one connection.
            const refusal = moveToClient(conn, head);
            if (refusal) {
              await writeAll(conn, encodeAnswer(refusal.answer, false, security));
              drain = true;
              return;
            }
            ip = table.keyOf(forwardedClient(head)!);
          }
          if (head.path === WS_PATH) {
            const { answer, refused } = upgradeAnswer(head, scheme, config.origins);
            if (refused) {
              metrics.webUpgradeRefused(refused);
              if (refused === "origin") {
                log.info("web.origin_refused", { peer: ip, origin: head.headers.get("origin") });
              }
              await writeAll(conn, encodeAnswer(answer, false, security));
              drain = true;
              return;
            }
            await writeAll(conn, encodeAnswer(answer, false, security));
            clock.clearTimer(timer);
            metrics.webUpgraded();
            const transport = new WebSocketServerTransport(conn, {
              maxMessageBytes: opts.maxMessageBytes,
              onFault: (e) =>
                log.info("web.socket_fault", { peer: ip, code: e.code, error: e.message }),
            }, carry);
            upgraded = true;
            opts.upgrade(transport, conn, ip);
            return;
          }
          // Bodies are not read: the connection ends after the answer, so none is taken for a head.
          keepAlive = keepsAlive(head) && !hasBody(head) && !stopping &&
            served + 1 < MAX_REQUESTS_PER_CONNECTION;
          const answer = head.path === ALTERNATES_PATH
            ? alternatesAnswer(config.alternates, head)
            : fileAnswer(opts.assets, head);
          // No answer to HEAD has a body, refusals included: it would be read as the next answer.
          if (head.method === "HEAD") answer.omitBody = true;
          await writeAll(conn, encodeAnswer(answer, keepAlive, security));
          drain = !keepAlive && (hasBody(head) || carry.length > 0);
        } finally {
          clock.clearTimer(timer);
        }
        if (!keepAlive) return;
      }
    } catch {
      // The peer went away, or a deadline closed the connection: nothing to answer.
    } finally {
      if (!upgraded) {
        if (drain) await drainThenClose(conn);
        table.release(conn);
        closeQuietly(conn);
      }
    }
  };

  /** Counts a proxied connection under its client's address; the refusal if it cannot. */
  const moveToClient = (conn: Deno.Conn, head: RequestHead): { answer: Answer } | null => {
    const client = forwardedClient(head);
    if (client === null) {
      log.warn("web.no_forwarded_for", { proxy: (conn.remoteAddr as Deno.NetAddr).hostname });
      return {
        answer: textAnswer(
          400,
          "A request through a trusted proxy must name its client in X-Forwarded-For\n",
        ),
      };
    }
    const key = table.keyOf(client);
    if (table.moveTo(conn, key)) return null;
    log.warn("connection.refused", {
      peer: key,
      open: table.size,
      from_ip: table.countFrom(key),
      port: "web",
    });
    return { answer: textAnswer(503, "Too many connections from your address\n") };
  };

  /** Ends our side, then reads and drops what the peer still sends, within bounds. */
  const drainThenClose = async (conn: Deno.Conn): Promise<void> => {
    const timer = clock.setTimer(() => closeQuietly(conn), DRAIN_MS);
    try {
      await conn.closeWrite();
      const buf = new Uint8Array(4096);
      for (let total = 0; total < MAX_DRAIN_BYTES;) {
        const n = await conn.read(buf);
        if (n === null) break;
        total += n;
      }
    } catch {
      // Gone, or closed at the deadline.
    } finally {
      clock.clearTimer(timer);
    }
  };

  /** The head did not come in time: 408, then the socket is closed (at once if it cannot be). */
  const answerTimeout = (conn: Deno.Conn): void => {
    const backstop = clock.setTimer(() => closeQuietly(conn), TIMEOUT_ANSWER_GRACE_MS);
    void writeAll(
      conn,
      encodeAnswer(textAnswer(408, "The request took too long\n"), false, security),
    )
      .catch(() => {})
      .finally(() => {
        clock.clearTimer(backstop);
        closeQuietly(conn);
      });
  };

  const acceptLoop = acceptEach(listener, () => stopping, log, "web.accept_failed", (conn) => {
    const hostname = (conn.remoteAddr as Deno.NetAddr).hostname;
    const ip = table.keyOf(hostname);
    // A trusted proxy's connections carry many clients' requests, each counted under its client
    // from its head on (moveToClient): the proxy's own address has no cap, or a burst of them
    // arriving at once would be refused for everyone behind it.
    if (!table.admit(conn, ip, !proxies.has(exactAddress(hostname)))) {
      log.warn("connection.refused", {
        peer: ip,
        open: table.size,
        from_ip: table.countFrom(ip),
        port: "web",
      });
      closeQuietly(conn);
      return;
    }
    const done = serveConn(conn, ip).finally(() => open.delete(conn));
    open.set(conn, done);
  });

  return {
    addr: listener.addr as Deno.NetAddr,
    scheme,
    close: async () => {
      stopping = true;
      closeQuietly(listener);
      await acceptLoop;
    },
    ended: async () => {
      await Promise.allSettled([...open.values()]);
    },
  };
}
