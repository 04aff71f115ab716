/** The Transport over a Deno TCP connection. */

import { ConnectionGone, type PeerAddress, type Transport } from "./transport.ts";

export class TcpTransport implements Transport {
  readonly conn: Deno.Conn;
  readonly peer: PeerAddress;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
    const remote = conn.remoteAddr as Deno.NetAddr;
    this.peer = { hostname: remote.hostname, port: remote.port };
    noDelay(conn);
  }

  // Read and write hand Deno's promises straight through: a wrapper to translate errors would
  // cost every read a promise and a turn of the microtask queue; isGone classifies instead.
  read(buf: Uint8Array): Promise<number | null> {
    return this.conn.read(buf);
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.conn.write(bytes);
  }

  closeWrite(): Promise<void> {
    return (this.conn as Deno.TcpConn).closeWrite();
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  isGone(error: unknown): boolean {
    return isConnectionGone(error);
  }
}

/**
 * Turns off Nagle's algorithm. Chat traffic is small messages that must leave at once; with
 * Nagle on, a small write waits for the peer's delayed ACK (up to 40 ms on Linux). The channel
 * already coalesces what one turn produces, so nothing is gained by waiting.
 */
function noDelay(conn: Deno.Conn): void {
  try {
    (conn as Deno.TcpConn).setNoDelay(true);
  } catch {
    // Not a TCP connection, or already closed.
  }
}

/** Errors that only mean the socket is gone (reset, closed under us), Deno's or a transport's. */
export function isConnectionGone(e: unknown): boolean {
  return e instanceof ConnectionGone || e instanceof Deno.errors.BadResource ||
    e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe ||
    e instanceof Deno.errors.Interrupted || e instanceof Deno.errors.ConnectionAborted ||
    e instanceof Deno.errors.NotConnected;
}
