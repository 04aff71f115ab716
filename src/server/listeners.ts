/**
 * The server's ports: chat, and HTTP (/healthz, /metrics) when enabled. They are bound before
 * anything else is made, so that a busy one is refused, naming its address, before the data dir
 * is touched (a first start would otherwise leave a key and an empty store behind).
 */

import { closeQuietly } from "./accept.ts";

/** Where the two ports are; the shape of `Config`'s fields of the same names. */
export interface ListenConfig {
  host: string;
  port: number;
  http: { enabled: boolean; host: string; port: number };
}

export class Listeners {
  private constructor(
    readonly chat: Deno.TcpListener,
    /** Null unless `http.enabled`. */
    readonly http: Deno.TcpListener | null,
  ) {}

  /** Binds both ports, or neither: if the second is refused, the first is let go. */
  static open(config: ListenConfig): Listeners {
    const chat = listenOn(config.host, config.port, "chat");
    let http: Deno.TcpListener | null = null;
    if (config.http.enabled) {
      try {
        http = listenOn(config.http.host, config.http.port, "HTTP");
      } catch (e) {
        chat.close();
        throw e;
      }
    }
    return new Listeners(chat, http);
  }

  get chatAddr(): Deno.NetAddr {
    return this.chat.addr as Deno.NetAddr;
  }

  /** Lets both ports go (a start that failed after binding them). */
  close(): void {
    closeQuietly(this.chat);
    if (this.http) closeQuietly(this.http);
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
