/**
 * HTTPS on the web port without Deno's TLS listener facing the internet. Deno's TlsConn.close()
 * waits for a handshake under way to finish (denoland/deno#14547), so a peer that connects and
 * never completes its handshake would keep its socket, and the TLS state behind it, for as long
 * as it likes after the server has given it up: no deadline could free it, and the connection
 * caps would count it no more. Here the public socket is plain TCP, relayed through loopback to
 * a TLS listener only this process reaches; closing a connection closes the public socket and
 * the relay's own, and the TLS side, reading EOF, lets its socket go at once.
 */

import { closeQuietly } from "../accept.ts";

/** Bytes one relay read moves at most. */
const RELAY_CHUNK_BYTES = 64 * 1024;

/**
 * After a connection is closed, how long its last TLS bytes (an answer, a close_notify) may take
 * to cross the relay before both plain sockets are closed regardless: a handshake never finished
 * holds the TLS side open, and only closing the relay's socket ends it.
 */
const RELAY_CLOSE_GRACE_MS = 1000;

/** A listener on `public` whose connections are the TLS side of each relayed socket. */
export class TlsFront implements Deno.Listener<Deno.Conn, Deno.NetAddr> {
  readonly #public: Deno.TcpListener;
  readonly #inner: Deno.TlsListener;
  constructor(pub: Deno.TcpListener, inner: Deno.TlsListener) {
    this.#public = pub;
    this.#inner = inner;
  }

  get addr(): Deno.NetAddr {
    return this.#public.addr;
  }

  /**
   * The TLS side of the relay socket `relay` just made. Accepts are one at a time (the accept
   * loop awaits each), so it is the next in the backlog but for another local process's, which
   * is closed: only this process may use the inner listener.
   */
  async #innerSideOf(relay: Deno.TcpConn): Promise<Deno.TlsConn> {
    while (true) {
      const conn = await this.#inner.accept();
      if (conn.remoteAddr.port === relay.localAddr.port) return conn;
      closeQuietly(conn);
    }
  }

  async accept(): Promise<Deno.Conn> {
    const outer = await this.#public.accept();
    let relay: Deno.TcpConn | null = null;
    try {
      relay = await Deno.connect({ hostname: "127.0.0.1", port: this.#inner.addr.port });
      const tls = await this.#innerSideOf(relay);
      void pump(outer, relay);
      return new FrontConn(tls, relay, outer, pump(relay, outer));
    } catch (e) {
      if (relay) closeQuietly(relay);
      closeQuietly(outer);
      throw e;
    }
  }

  close(): void {
    closeQuietly(this.#public);
    closeQuietly(this.#inner);
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<Deno.Conn> {
    while (true) yield await this.accept();
  }

  ref(): void {
    this.#public.ref();
  }

  unref(): void {
    this.#public.unref();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Bytes copied one way through the relay, and the end of that copying. */
interface Flow {
  bytes: number;
  done: Promise<void>;
}

/** Copies `from` to `to` until either ends; then both are closed. */
function pump(from: Deno.Conn, to: Deno.Conn): Flow {
  const flow: Flow = { bytes: 0, done: Promise.resolve() };
  flow.done = (async () => {
    const buf = new Uint8Array(RELAY_CHUNK_BYTES);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        let written = 0;
        while (written < n) written += await to.write(buf.subarray(written, n));
        flow.bytes += n;
      }
    } catch {
      // One side is gone or closed.
    } finally {
      closeQuietly(from);
      closeQuietly(to);
    }
  })();
  return flow;
}

/**
 * The TLS side of a relayed connection, seen as the public one: its peer's address, and a
 * close() that also closes both plain sockets (which is what ends an unfinished handshake).
 */
class FrontConn implements Deno.Conn<Deno.NetAddr> {
  constructor(
    readonly tls: Deno.TlsConn,
    readonly relay: Deno.TcpConn,
    readonly outer: Deno.TcpConn,
    /** The relay's copying of the TLS side's bytes to the peer, until the TLS side ends. */
    readonly toPeer: Flow,
  ) {}

  get localAddr(): Deno.NetAddr {
    return this.outer.localAddr;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.outer.remoteAddr;
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.tls.readable;
  }

  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.tls.writable;
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.tls.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    return this.tls.write(p);
  }

  closeWrite(): Promise<void> {
    return this.tls.closeWrite();
  }

  /** Throws if closed already, like any Conn (callers close quietly). */
  close(): void {
    this.tls.close();
    if (this.toPeer.bytes === 0) {
      // The TLS side never said a word (no ServerHello): nothing to deliver, close at once.
      closeQuietly(this.relay);
      closeQuietly(this.outer);
      return;
    }
    // What the TLS side wrote last still crosses the relay; the copying ends (closing both
    // sockets) when the TLS side lets its socket go, or the grace ends it.
    const timer = setTimeout(() => {
      closeQuietly(this.relay);
      closeQuietly(this.outer);
    }, RELAY_CLOSE_GRACE_MS);
    void this.toPeer.done.finally(() => clearTimeout(timer));
  }

  ref(): void {
    this.outer.ref();
  }

  unref(): void {
    this.outer.unref();
  }

  [Symbol.dispose](): void {
    closeQuietly(this);
  }
}
