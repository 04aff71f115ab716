/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * What the page needs from outside the client core: a WebSocket to the server that serves the
 * page. This is the one module that names the browser's transport, so that wiring the core's
 * browser platform in (WebSocket dial, WebCrypto) touches one file.
 */

import type { Transport } from "../transport/transport.ts";

/** The WebSocket endpoint of the server that served this page (same origin: no CORS, no CSP hole). */
export function socketUrl(location: Location): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/** Opens the WebSocket transport; the core's browser platform provides it. */
export function dial(_url: string): Promise<Transport> {
  return Promise.reject(
    new Error("This build has no WebSocket transport yet (src/transport/websocket_client.ts)"),
  );
}
