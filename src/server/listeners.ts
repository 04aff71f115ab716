/**
 * The server's ports: chat, HTTP (/healthz, /metrics) when enabled, and the web client's
 * (web/web_listener.ts; HTTPS with web.tls) when enabled. They are bound before
 * anything else is made, so that a busy one is refused, naming its address, before the data dir
 * is touched (a first start would otherwise leave a key and an empty store behind).
 */

import { closeQuietly } from "./accept.ts";
import { TlsFront } from "./web/tls_front.ts";

/** Where the ports are; the shape of `Config`'s fields of the same names. */
export interface ListenConfig {
  host: string;
  port: number;
  http: { enabled: boolean; host: string; port: number };
  /** Absent: no web listener. */
  web?: {
    enabled: boolean;
    host: string;
    port: number;
    tls: { cert: string; key: string } | null;
  };
}

export class Listeners {
  private constructor(
    readonly chat: Deno.TcpListener,
    /** Null unless `http.enabled`. */
    readonly http: Deno.TcpListener | null,
    /** Null unless `web.enabled`; a TLS listener when `web.tls` names the files. */
    readonly web: Deno.Listener | null,
  ) {}

  /** Binds every port asked for, or none: if one is refused, those bound before are let go. */
  static open(config: ListenConfig): Listeners {
    const chat = listenOn(config.host, config.port, "chat");
    let http: Deno.TcpListener | null = null;
    let web: Deno.Listener | null = null;
    try {
      if (config.http.enabled) http = listenOn(config.http.host, config.http.port, "HTTP");
      if (config.web?.enabled) web = listenWeb(config.web);
    } catch (e) {
      chat.close();
      if (http) closeQuietly(http);
      throw e;
    }
    return new Listeners(chat, http, web);
  }

  get chatAddr(): Deno.NetAddr {
    return this.chat.addr as Deno.NetAddr;
  }

  /** Lets both ports go (a start that failed after binding them). */
  close(): void {
    closeQuietly(this.chat);
    if (this.http) closeQuietly(this.http);
    if (this.web) closeQuietly(this.web);
  }
}

/**
 * The web port: plain TCP, or TLS with the configured PEM files (read now, so that a missing or
 * unreadable file is refused at start in a sentence naming it).
 */
function listenWeb(web: NonNullable<ListenConfig["web"]>): Deno.Listener {
  if (web.tls === null) return listenOn(web.host, web.port, "web");
  const cert = readPem(web.tls.cert, "web.tls.cert");
  const key = readPem(web.tls.key, "web.tls.key");
  let inner: Deno.TlsListener;
  try {
    // On loopback only, behind a plain TCP port: see tls_front.ts for why.
    inner = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  } catch (e) {
    throw new Error(
      `Cannot serve HTTPS with "${web.tls.cert}" and "${web.tls.key}": ${(e as Error).message}`,
      { cause: e },
    );
  }
  try {
    return new TlsFront(listenOn(web.host, web.port, "web"), inner);
  } catch (e) {
    closeQuietly(inner);
    throw e;
  }
}

function readPem(path: string, setting: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`Cannot read ${setting} "${path}": ${(e as Error).message}`, { cause: e });
  }
}

/** Binds `host:port`; a taken port is refused in a sentence that names the address. */
export function listenOn(host: string, port: number, what: string): Deno.TcpListener {
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
