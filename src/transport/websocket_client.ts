/**
 * The Transport over a WHATWG WebSocket: the client's end of the web port's chat socket
 * (PROTOCOL.md, "WebSocket mapping"). Binary messages carry the TCP protocol's bytes; read()
 * hands out their payload concatenated, write() sends each write as one binary message.
 *
 * It runs in the browser as well as in Deno (tests): no `node:` import and no Deno namespace here.
 *
 * A WebSocket cannot be paused, so what arrives is queued until read; the queue is bounded, and
 * a server that sends far more than is read is cut off rather than let to fill memory. Writing
 * waits while the socket's own buffer (bufferedAmount) is above a high-water mark.
 */

import { ConnectionGone, type PeerAddress, type Transport } from "./transport.ts";

/** Received bytes that may wait to be read before the connection is closed. */
export const WS_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** One write's bytes go out as at most this much in one message; the rest is a later write. */
export const WS_MAX_SEND_BYTES = 256 * 1024;

/** Bytes the socket may hold unsent before write() waits for it to drain. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** How often a waiting write looks at bufferedAmount (the API has no drain event). */
const DRAIN_POLL_MS = 5;

export interface WebSocketDialOptions {
  /**
   * Makes the socket; `new WebSocket(url)` unless given (Deno's tests add an Origin header,
   * which a browser sends by itself).
   */
  open?: (url: string) => WebSocket;
  /** The bound on received bytes not yet read; WS_MAX_QUEUED_BYTES unless given. */
  maxQueuedBytes?: number;
}

export class WebSocketTransport implements Transport {
  readonly peer: PeerAddress;
  readonly #ws: WebSocket;
  readonly #maxQueued: number;
  /** Received messages not yet read wholly; the first is read from #head on. */
  #queue: Uint8Array[] = [];
  #head = 0;
  #queuedBytes = 0;
  /** Set when the socket closed (or was failed): reads drain the queue, then end or fail. */
  #ended = false;
  /** Why reads fail once the queue is drained; null: they return null (a clean close). */
  #failure: Error | null = null;
  #closedByUs = false;
  /** The read waiting for a message or the close. */
  #wake: (() => void) | null = null;
  /** The server's Close code and reason, once the socket closed (for the page to show). */
  closeCode: number | null = null;
  closeReason = "";

  private constructor(ws: WebSocket, url: URL, opts: WebSocketDialOptions) {
    this.#ws = ws;
    this.#maxQueued = opts.maxQueuedBytes ?? WS_MAX_QUEUED_BYTES;
    const port = url.port !== "" ? Number(url.port) : url.protocol === "wss:" ? 443 : 80;
    this.peer = { hostname: url.hostname, port };
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => this.#received(e.data);
    ws.onclose = (e) => {
      this.closeCode = e.code;
      this.closeReason = e.reason;
      if (!e.wasClean && this.#failure === null && !this.#closedByUs) {
        this.#failure = new ConnectionGone(`The WebSocket was cut off (code ${e.code})`);
      }
      this.#end();
    };
  }

  /** Opens a socket to `url` (ws: or wss:); resolves once it is open. */
  static connect(url: string, opts: WebSocketDialOptions = {}): Promise<WebSocketTransport> {
    const parsed = new URL(url);
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      return Promise.reject(new TypeError(`Not a WebSocket URL: "${url}"`));
    }
    const ws = opts.open ? opts.open(url) : new WebSocket(url);
    return new Promise((resolve, reject) => {
      ws.onopen = () => {
        ws.onerror = null;
        resolve(new WebSocketTransport(ws, parsed, opts));
      };
      ws.onerror = () => reject(new ConnectionGone(`Cannot open a WebSocket to ${url}`));
      ws.onclose = (e) =>
        reject(new ConnectionGone(`The WebSocket to ${url} closed before it opened (${e.code})`));
    });
  }

  #received(data: unknown): void {
    if (this.#ended) return;
    if (!(data instanceof ArrayBuffer)) {
      this.#fail(new Error("The server sent a text message: the protocol is binary only"));
      return;
    }
    if (data.byteLength === 0) return;
    this.#queuedBytes += data.byteLength;
    if (this.#queuedBytes > this.#maxQueued) {
      this.#fail(new Error(`More than ${this.#maxQueued} received bytes were left unread`));
      return;
    }
    this.#queue.push(new Uint8Array(data));
    this.#notify();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#closedByUs = true;
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#ws.close();
    this.#end();
  }

  #end(): void {
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(buf: Uint8Array): Promise<number | null> {
    if (this.#wake !== null) throw new Error("One read at a time");
    while (this.#queue.length === 0) {
      if (this.#ended) {
        if (this.#failure) throw this.#failure;
        return null;
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < buf.length && this.#queue.length > 0) {
      const chunk = this.#queue[0];
      const count = Math.min(chunk.length - this.#head, buf.length - n);
      buf.set(chunk.subarray(this.#head, this.#head + count), n);
      n += count;
      this.#head += count;
      if (this.#head === chunk.length) {
        this.#queue.shift();
        this.#head = 0;
      }
    }
    this.#queuedBytes -= n;
    if (this.#queuedBytes < 0) throw new Error("WebSocket transport queue count below zero");
    return n;
  }

  async write(bytes: Uint8Array): Promise<number> {
    while (this.#open() && this.#ws.bufferedAmount > HIGH_WATER_BYTES) {
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    }
    if (!this.#open()) throw new ConnectionGone("The WebSocket is closed");
    const n = Math.min(bytes.length, WS_MAX_SEND_BYTES);
    // A copy: the caller may reuse its buffer once this resolves.
    this.#ws.send(bytes.slice(0, n));
    return n;
  }

  #open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN && !this.#closedByUs;
  }

  /**
   * Starts the closing handshake (Close 1000). What was sent before goes first; unlike TCP's
   * half-close, a browser drops what arrives after it, so reads end with the socket's close.
   */
  closeWrite(): Promise<void> {
    if (this.#ended || this.#closedByUs) {
      return Promise.reject(new ConnectionGone("The WebSocket is closed"));
    }
    this.#closedByUs = true;
    this.#ws.close(1000);
    return Promise.resolve();
  }

  close(): void {
    if (!this.#ended) this.#failure ??= new ConnectionGone("The WebSocket was closed");
    this.#closedByUs = true;
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    if (this.#ws.readyState !== WebSocket.CLOSED) this.#ws.close();
    this.#end();
  }

  isGone(error: unknown): boolean {
    return error instanceof ConnectionGone;
  }
}

/** A `ConnectOptions.dial` that opens the chat WebSocket at `url` (ws://host:port/ws). */
export function dial(url: string, opts: WebSocketDialOptions = {}): () => Promise<Transport> {
  return () => WebSocketTransport.connect(url, opts);
}
