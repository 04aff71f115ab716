/**
 * The head of an HTTP/1.1 request, as the web listener needs it: the request line and the
 * headers, parsed strictly from bytes (pure, no socket). A browser asks for a handful of files
 * and one WebSocket upgrade; anything unusual is refused rather than guessed at.
 */

/**
 * The largest head accepted. Browsers send 1-2 KiB (no cookies are ever set here); the margin
 * is for proxies' forwarding headers. More is refused with 431.
 */
export const WEB_MAX_HEAD_BYTES = 16 * 1024;

/** Headers accepted in one head; more is refused with 431 (each costs a map entry). */
export const WEB_MAX_HEADERS = 100;

export interface RequestHead {
  method: string;
  /** The path of the request target, without its query ("/", "/app.js", "/ws"). */
  path: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** By lower-case name; a repeated header's values joined with ", " (RFC 9110 5.3). */
  headers: Map<string, string>;
}

/** A head that cannot be served: `status` is the answer (400, 431 or 505). */
export class HeadError extends Error {
  override name = "HeadError";
  constructor(readonly status: 400 | 431 | 505, message: string) {
    super(message);
  }
}

const CR = 13;
const LF = 10;

/** Where the head ends (just past its CRLF CRLF) in `buf[0, length)`, searching from `from`; -1. */
export function headEnd(buf: Uint8Array, from: number, length: number): number {
  for (let i = Math.max(0, from - 3); i + 3 < length; i++) {
    if (buf[i] === CR && buf[i + 1] === LF && buf[i + 2] === CR && buf[i + 3] === LF) {
      return i + 4;
    }
  }
  return -1;
}

/**
 * Whether `buf[from, length)` holds a LF not preceded by CR: a head with one is refused at once,
 * since waiting for a CRLF CRLF that such a client never sends would only end at the deadline.
 */
export function hasBareLf(buf: Uint8Array, from: number, length: number): boolean {
  for (let i = from; i < length; i++) {
    if (buf[i] === LF && (i === 0 || buf[i - 1] !== CR)) return true;
  }
  return false;
}

/** RFC 9110 token characters: a method or a header name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value: visible characters, spaces and tabs (obs-text allowed, as RFC 9110 does). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** An origin-form request target: a path and an optional query, visible ASCII only. */
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;

const latin1 = new TextDecoder("latin1");

/** Parses a whole head (ending in CRLF CRLF, as `headEnd` found it). Throws HeadError. */
export function parseHead(bytes: Uint8Array): RequestHead {
  if (bytes.length > WEB_MAX_HEAD_BYTES) {
    throw new HeadError(431, `The request head is over ${WEB_MAX_HEAD_BYTES} bytes`);
  }
  const text = latin1.decode(bytes);
  if (!text.endsWith("\r\n\r\n")) throw new HeadError(400, "The request head is not complete");
  const lines = text.slice(0, -4).split("\r\n");
  // A bare CR or LF inside a line is how request smuggling starts: refuse it.
  if (lines.some((l) => l.includes("\r") || l.includes("\n"))) {
    throw new HeadError(400, "A line of the request head ends without CRLF");
  }
  const parts = lines[0].split(" ");
  if (parts.length !== 3) throw new HeadError(400, "The request line is not METHOD TARGET VERSION");
  const [method, target, version] = parts;
  if (!TOKEN.test(method)) throw new HeadError(400, "The request method is not a token");
  const v = /^HTTP\/1\.([01])$/.exec(version);
  if (!v) {
    if (/^HTTP\/\d(\.\d)?$/.test(version)) {
      throw new HeadError(505, `${JSON.stringify(version)} is not served here: HTTP/1.1 only`);
    }
    throw new HeadError(400, "The request line names no HTTP version");
  }
  if (!ORIGIN_FORM.test(target)) {
    throw new HeadError(400, "The request target must be a path starting with /");
  }
  const query = target.indexOf("?");
  const path = query < 0 ? target : target.slice(0, query);
  if (lines.length - 1 > WEB_MAX_HEADERS) {
    throw new HeadError(431, `The request has more than ${WEB_MAX_HEADERS} headers`);
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    // A line starting with white space is obsolete line folding (RFC 9112 5.2): refused.
    if (colon <= 0) throw new HeadError(400, "A header line has no name");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HeadError(400, "A header name is not a token");
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) {
      throw new HeadError(400, `The header ${name} holds a control character`);
    }
    const key = name.toLowerCase();
    const before = headers.get(key);
    if (before !== undefined && SINGLE.has(key)) {
      throw new HeadError(400, `The header ${name} is given twice`);
    }
    headers.set(key, before === undefined ? value : `${before}, ${value}`);
  }
  const minor = v[1] === "1" ? 1 : 0;
  if (minor === 1 && !headers.has("host")) {
    throw new HeadError(400, "An HTTP/1.1 request needs a Host header");
  }
  return { method, path, minor, headers };
}

/** Headers that must not repeat: two values would be read differently by different parties. */
const SINGLE = new Set([
  "host",
  "origin",
  "content-length",
  "sec-websocket-key",
  "sec-websocket-version",
]);

/** Whether the comma-separated header `value` lists `token` (case-insensitive). */
export function listsToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const wanted = token.toLowerCase();
  return value.split(",").some((t) => t.trim().toLowerCase() === wanted);
}
