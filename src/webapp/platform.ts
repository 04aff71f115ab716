/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * What the page gives the client core: a WebSocket to the server that served the page, and
 * WebCrypto for the handshake, the channel and SHA-256. The one module that names them, so that
 * the rest of the app knows only the core's ClientPlatform.
 */

import type { Endpoint } from "../client/core.ts";
import type { ClientPlatform } from "../client/platform.ts";
import { webPlatform } from "../client/web_platform.ts";
import type { Transport } from "../transport/transport.ts";
import { WebSocketTransport } from "../transport/websocket_client.ts";

/** The WebSocket endpoint of the server that served this page: same origin, so no CORS. */
export function socketUrl(location: Location): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/** Opens the WebSocket to `url`; the browser sends the page's Origin, which the server checks. */
export function dial(url: string): Promise<Transport> {
  return WebSocketTransport.connect(url);
}

/** The client platform in a browser: WebCrypto over the page's WebSocket. */
export function browserPlatform(): ClientPlatform {
  return webPlatform(() => dial(socketUrl(location)));
}

/**
 * The other nodes of this server's cluster, as the server lists them (`web.alternates`, served
 * at /alternates.json): WebSocket URLs the link resumes at when this origin's goes away. None
 * when the server lists none or cannot be asked.
 */
export async function alternateEndpoints(): Promise<Endpoint[]> {
  try {
    const res = await fetch("/alternates.json", { cache: "no-cache" });
    if (!res.ok) return [];
    const list = ((await res.json()) as { alternates?: unknown }).alternates;
    if (!Array.isArray(list)) return [];
    return list.filter((u): u is string => typeof u === "string" && /^wss?:\/\//.test(u))
      .map((url) => {
        const u = new URL(url);
        const port = Number(u.port) || (u.protocol === "wss:" ? 443 : 80);
        return { host: u.hostname, port, dial: () => dial(url) };
      });
  } catch {
    return [];
  }
}
