/** A server with its web port on, placeholder client files, and a hand-driven WebSocket peer. */

import { MemoryAssets } from "../../src/server/web/assets.ts";
import type { ServerOptions } from "../../src/server/server.ts";
import { type TestServer, withServer } from "../helpers/server.ts";
import { dial as dialWebSocket } from "../../src/transport/websocket_client.ts";
import type { ConnectOptions, ParleyClient } from "../../src/client/client.ts";

/** Stand-ins for the files helper H2 builds (src/webapp/): only their bytes matter here. */
export const PLACEHOLDER_FILES = {
  "/index.html": '<!doctype html><title>Parley</title><script src="/app.js"></script>\n',
  "/app.js": 'console.log("parley");\n',
  "/style.css": "body { margin: 0 }\n",
};

export function withWebServer(
  fn: (t: TestServer, web: URL) => Promise<void>,
  patch: Record<string, unknown> = {},
  options: ServerOptions = {},
): Promise<void> {
  const { web, ...rest } = patch as { web?: Record<string, unknown> };
  return withServer(
    (t) => fn(t, new URL(t.server.web!)),
    { ...rest, web: { enabled: true, host: "127.0.0.1", port: 0, ...web } },
    { webAssets: MemoryAssets.of(PLACEHOLDER_FILES), ...options },
  );
}

/** The chat socket's URL for a web port at `web`. */
export function wsUrl(web: URL): string {
  return `${web.protocol === "https:" ? "wss" : "ws"}://${web.host}/ws`;
}

/** ConnectOptions for a ParleyClient over Deno's WebSocket, sending the page's Origin. */
export function overWebSocket(web: URL): Partial<ConnectOptions> {
  return {
    dial: dialWebSocket(wsUrl(web), {
      open: (url) => new WebSocket(url, { headers: { origin: web.origin } } as never),
    }),
  };
}

/** A client over the WebSocket, registered and logged in as `name`. */
export async function webUser(t: TestServer, web: URL, name: string): Promise<ParleyClient> {
  const client = await t.connect(overWebSocket(web));
  await client.register(name, "password-" + name);
  await client.login(name, "password-" + name);
  return client;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends `head` (CRLFs added) and reads the answer until the peer closes or `until` matches. */
export async function exchange(port: number, head: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(head));
    return await readAll(conn);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the server.
    }
  }
}

/**
 * Reads until the peer closes (or resets), or until `ms` of the process's time pass (then the
 * connection is closed: a server that never closes fails the test instead of hanging it).
 */
export async function readAll(conn: Deno.Conn, ms = 10_000): Promise<string> {
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }, ms);
  try {
    return await readUntilEnd(conn);
  } finally {
    clearTimeout(timer);
  }
}

async function readUntilEnd(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch {
      break;
    }
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  return decoder.decode(concat(chunks));
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A GET request head for `path` on `port`, with extra header lines. */
export function get(port: number, path: string, extra: string[] = [], method = "GET"): string {
  return [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Connection: close", ...extra]
    .join("\r\n") + "\r\n\r\n";
}

/** An upgrade request head for /ws; `headers` replace the defaults by name (null drops one). */
export function upgradeHead(port: number, headers: Record<string, string | null> = {}): string {
  const all: Record<string, string | null> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    Origin: `http://127.0.0.1:${port}`,
    ...headers,
  };
  const lines = Object.entries(all).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}`);
  return ["GET /ws HTTP/1.1", ...lines].join("\r\n") + "\r\n\r\n";
}

/** A hand-driven WebSocket peer over raw TCP: frames built by the test. */
export class RawSocket {
  #buffered: Uint8Array = new Uint8Array(0);

  private constructor(readonly conn: Deno.Conn, readonly status: number) {}

  /** Connects and upgrades; `status` is the answer's (101 when it worked). */
  static async open(port: number, headers: Record<string, string | null> = {}) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(upgradeHead(port, headers)));
    const socket = new RawSocket(conn, 0);
    const head = await socket.#readHead();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    const out = new RawSocket(conn, status);
    out.#buffered = socket.#buffered;
    return { socket: out, head };
  }

  async #readHead(): Promise<string> {
    while (true) {
      const text = decoder.decode(this.#buffered);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buffered = this.#buffered.slice(encoder.encode(text.slice(0, end + 4)).length);
        return text.slice(0, end + 4);
      }
      if (!await this.#more()) return text;
    }
  }

  async #more(): Promise<boolean> {
    const buf = new Uint8Array(65536);
    let n: number | null;
    try {
      n = await this.conn.read(buf);
    } catch {
      return false;
    }
    if (n === null) return false;
    this.#buffered = concat([this.#buffered, buf.subarray(0, n)]);
    return true;
  }

  /** Sends one frame; `mask` false sends it unmasked (which a client must not). */
  send(opcode: number, payload: Uint8Array, opts: { fin?: boolean; mask?: boolean } = {}) {
    return this.conn.write(clientFrame(opcode, payload, opts));
  }

  /** The next server frame, or null once the connection ends. */
  async frame(): Promise<{ fin: boolean; opcode: number; payload: Uint8Array } | null> {
    while (true) {
      const b = this.#buffered;
      if (b.length >= 2) {
        const short = b[1] & 0x7f;
        const extra = short === 126 ? 2 : short === 127 ? 8 : 0;
        if (b[1] & 0x80) throw new Error("The server sent a masked frame");
        if (b.length >= 2 + extra) {
          const view = new DataView(b.buffer, b.byteOffset);
          const length = short === 126
            ? view.getUint16(2)
            : short === 127
            ? Number(view.getBigUint64(2))
            : short;
          if (b.length >= 2 + extra + length) {
            const payload = b.slice(2 + extra, 2 + extra + length);
            this.#buffered = b.slice(2 + extra + length);
            return { fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, payload };
          }
        }
      }
      if (!await this.#more()) return null;
    }
  }

  /** Reads frames until a Close; its code, or null if the connection ended without one. */
  async closeCode(): Promise<number | null> {
    while (true) {
      const f = await this.frame();
      if (f === null) return null;
      if (f.opcode === 0x8) {
        return f.payload.length >= 2 ? (f.payload[0] << 8) | f.payload[1] : 1005;
      }
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
  }
}

/** A client frame: masked unless told otherwise. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array,
  opts: { fin?: boolean; mask?: boolean } = {},
): Uint8Array {
  const fin = opts.fin ?? true;
  const masked = opts.mask ?? true;
  const extra = payload.length < 126 ? 0 : payload.length < 65536 ? 2 : 8;
  const head = new Uint8Array(2 + extra + (masked ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  const view = new DataView(head.buffer);
  const lengthBits = extra === 0 ? payload.length : extra === 2 ? 126 : 127;
  head[1] = (masked ? 0x80 : 0) | lengthBits;
  if (extra === 2) view.setUint16(2, payload.length);
  if (extra === 8) view.setBigUint64(2, BigInt(payload.length));
  const body = payload.slice();
  if (masked) {
    const mask = crypto.getRandomValues(new Uint8Array(4));
    head.set(mask, 2 + extra);
    for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  }
  return concat([head, body]);
}

/** A metric's value from the server's /metrics (the HTTP endpoint must be on). */
export async function metric(t: TestServer, sample: string): Promise<number> {
  const http = t.server.http!;
  const text = await (await fetch(`http://${http.hostname}:${http.port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(sample + " "));
  if (line === undefined) throw new Error(`No sample ${sample} in /metrics`);
  return Number(line.slice(sample.length + 1));
}

/** Settings that turn on the HTTP endpoint as well (to read metrics). */
export const WITH_METRICS = { http: { enabled: true, host: "127.0.0.1", port: 0 } };
