/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * What the page gives the client core: a WebSocket to the server that served the page, and
 * WebCrypto for the handshake, the channel and SHA-256. The one module that names them, so that
 * the rest of the app knows only the core's ClientPlatform.
 */

import type { ClientPlatform } from "../client/platform.ts";
import type { Transport } from "../transport/transport.ts";

/** The WebSocket endpoint of the server that served this page: same origin, so no CORS. */
export function socketUrl(location: Location): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/** Opens the WebSocket transport. */
export function dial(_url: string): Promise<Transport> {
  return Promise.reject(
    new Error("This build has no WebSocket transport yet (src/transport/websocket_client.ts)"),
  );
}

/** The client platform in a browser. */
export function browserPlatform(): ClientPlatform {
  const missing = () => Promise.reject(new Error("This build has no WebCrypto platform yet"));
  return {
    dial: () => missing(),
    secure: () => missing(),
    sha256: async (...parts) => {
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) all.set(p, (at += p.length) - p.length);
      return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
    },
    hasher: () => {
      throw new Error("This build has no WebCrypto platform yet");
    },
  };
}
