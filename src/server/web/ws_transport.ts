/**
 * The Transport over an upgraded WebSocket connection, server side (RFC 6455): read() yields
 * the payload bytes of the client's binary messages, concatenated, and null after its Close;
 * write() sends binary frames. The chat handshake and frames above it are the TCP protocol's,
 * byte for byte: any split into messages is allowed, so payload is handed on as it arrives and
 * no message is ever held whole.
 *
 * The peer's mistakes (an unmasked frame, a text message, a reserved bit or opcode, a message
 * over the size limit) fail the connection: a Close with the matching code is sent, `onFault`
 * is told why, and read() returns null, so the session above ends as if the peer had closed.
 */

import { ConnectionGone, type PeerAddress, type Transport } from "../../transport/transport.ts";
import { isConnectionGone } from "../../transport/tcp.ts";
import {
  CloseCode,
  closePayload,
  encodeFrame,
  type FrameHeader,
  frameHeader,
  MAX_CONTROL_PAYLOAD,
  MAX_HEADER_BYTES,
  Opcode,
  parseFrameHeader,
  unmask,
  WebSocketProtocolError,
} from "./ws_frames.ts";

/**
 * The largest payload one write() puts in a frame; a longer write is taken in parts (a partial
 * write, which the Transport allows). Keeps one frame's header-plus-copy small.
 */
export const WS_MAX_OUT_FRAME = 256 * 1024;

/**
 * Room for control frames and headers: a control frame is read whole into this buffer, and
 * an idle connection holds nothing else (data payload goes straight into the caller's buffer).
 */
const RAW_BYTES = 2 * (MAX_HEADER_BYTES + MAX_CONTROL_PAYLOAD);

/** Writes that may wait before a ping gets no pong. */
const MAX_PENDING_PONGS = 8;

/** How long close() waits for a Close frame still being written before it closes regardless. */
const CLOSE_GRACE_MS = 1000;

export interface WebSocketTransportOptions {
  /** Payload bytes one message may carry at most; more fails the connection with 1009. */
  maxMessageBytes: number;
  /** Told once when the peer breaks the protocol (for the log). */
  onFault?: (error: WebSocketProtocolError) => void;
}

export class WebSocketServerTransport implements Transport {
  readonly peer: PeerAddress;
  readonly #conn: Deno.Conn;
  readonly #opts: WebSocketTransportOptions;
  /** Header and control-frame bytes read but not yet used: raw[rawStart, rawEnd). */
  readonly #raw = new Uint8Array(RAW_BYTES);
  #rawStart = 0;
  #rawEnd = 0;
  /** Payload bytes of the current data frame not yet handed out. */
  #remaining = 0;
  #mask: Uint8Array | null = null;
  /** Payload bytes of the current data frame already handed out (the mask's position). */
  #position = 0;
  /** Inside a fragmented message: the next data frame must be a continuation. */
  #inMessage = false;
  #messageBytes = 0;
  /** The peer's Close came (or the peer failed): reads return null from now on. */
  #readEnded = false;
  /** Our Close went out: no data frame may follow it. */
  #closeSent = false;
  #closed = false;
  /** The writes in order: data frames and control frames never interleave on the socket. */
  #tail: Promise<void> = Promise.resolve();
  #writesPending = 0;

  /** `leftover`: bytes that came after the upgrade request's head in the same read. */
  constructor(conn: Deno.Conn, opts: WebSocketTransportOptions, leftover?: Uint8Array) {
    this.#conn = conn;
    this.#opts = opts;
    const remote = conn.remoteAddr as Deno.NetAddr;
    this.peer = { hostname: remote.hostname, port: remote.port };
    if (leftover && leftover.length > 0) {
      if (leftover.length > RAW_BYTES) {
        // A client may not send frames before it has the 101; one that floods them is failed.
        this.#fail(new WebSocketProtocolError(CloseCode.protocolError, "Frames before the 101"));
      } else {
        this.#raw.set(leftover);
        this.#rawEnd = leftover.length;
      }
    }
  }

  async read(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) throw new ConnectionGone("The WebSocket is closed");
    while (!this.#readEnded) {
      if (this.#remaining > 0) return await this.#readPayload(buf);
      try {
        const header = this.#nextHeader();
        if (header !== null) {
          this.#take(header);
          continue;
        }
      } catch (e) {
        if (!(e instanceof WebSocketProtocolError)) throw e;
        this.#fail(e);
        continue;
      }
      if (!await this.#fill()) return null;
    }
    return null;
  }

  /** Hands out payload of the current data frame: buffered bytes first, else from the socket. */
  async #readPayload(buf: Uint8Array): Promise<number | null> {
    const want = Math.min(buf.length, this.#remaining);
    let n: number;
    if (this.#rawEnd > this.#rawStart) {
      n = Math.min(want, this.#rawEnd - this.#rawStart);
      buf.set(this.#raw.subarray(this.#rawStart, this.#rawStart + n));
      this.#rawStart += n;
    } else {
      const got = await this.#conn.read(buf.subarray(0, want));
      // The socket ended inside a frame: the peer is gone without its Close.
      if (got === null) {
        this.#readEnded = true;
        return null;
      }
      n = got;
    }
    unmask(buf.subarray(0, n), this.#mask!, this.#position);
    this.#position += n;
    this.#remaining -= n;
    assertState(this.#remaining >= 0, "more payload handed out than the frame had");
    return n;
  }

  /** The next frame's header if it is all buffered (and a control frame's payload with it). */
  #nextHeader(): FrameHeader | null {
    const header = parseFrameHeader(this.#raw, this.#rawStart, this.#rawEnd);
    if (header === null) return null;
    const isControl = (header.opcode & 0x8) !== 0;
    if (isControl && header.length <= MAX_CONTROL_PAYLOAD) {
      if (this.#rawEnd - this.#rawStart < header.headerBytes + header.length) return null;
    }
    return header;
  }

  /** Reads more header bytes from the socket; false if the socket ended. */
  async #fill(): Promise<boolean> {
    if (this.#rawStart > 0) {
      this.#raw.copyWithin(0, this.#rawStart, this.#rawEnd);
      this.#rawEnd -= this.#rawStart;
      this.#rawStart = 0;
    }
    assertState(this.#rawEnd < this.#raw.length, "the header buffer is full");
    const got = await this.#conn.read(this.#raw.subarray(this.#rawEnd));
    if (got === null) {
      this.#readEnded = true;
      return false;
    }
    this.#rawEnd += got;
    return true;
  }

  /** Acts on one frame header (its control payload, if any, buffered behind it). */
  #take(h: FrameHeader): void {
    if (h.rsv !== 0) {
      throw new WebSocketProtocolError(CloseCode.protocolError, "A reserved bit is set");
    }
    if (h.mask === null) {
      throw new WebSocketProtocolError(CloseCode.protocolError, "A client frame is not masked");
    }
    if ((h.opcode & 0x8) !== 0) {
      if (!h.fin || h.length > MAX_CONTROL_PAYLOAD) {
        throw new WebSocketProtocolError(
          CloseCode.protocolError,
          "A control frame is fragmented or too long",
        );
      }
      const start = this.#rawStart + h.headerBytes;
      const payload = this.#raw.slice(start, start + h.length);
      this.#rawStart = start + h.length;
      unmask(payload, h.mask, 0);
      this.#control(h.opcode, payload);
      return;
    }
    if (h.opcode === Opcode.text) {
      throw new WebSocketProtocolError(
        CloseCode.unsupportedData,
        "Text messages are not part of the protocol: binary only",
      );
    }
    if (h.opcode === Opcode.binary) {
      if (this.#inMessage) {
        throw new WebSocketProtocolError(CloseCode.protocolError, "A message began inside another");
      }
      this.#messageBytes = 0;
    } else if (h.opcode === Opcode.continuation) {
      if (!this.#inMessage) {
        throw new WebSocketProtocolError(CloseCode.protocolError, "A continuation with no message");
      }
    } else {
      throw new WebSocketProtocolError(CloseCode.protocolError, `Unknown opcode ${h.opcode}`);
    }
    this.#messageBytes += h.length;
    if (this.#messageBytes > this.#opts.maxMessageBytes) {
      throw new WebSocketProtocolError(
        CloseCode.tooBig,
        `A message is over ${this.#opts.maxMessageBytes} bytes`,
      );
    }
    this.#inMessage = !h.fin;
    this.#rawStart += h.headerBytes;
    this.#remaining = h.length;
    this.#mask = h.mask;
    this.#position = 0;
  }

  #control(opcode: number, payload: Uint8Array): void {
    if (opcode === Opcode.ping) {
      // A peer that pings and never reads gets no more pongs than a few (RFC 6455 5.5.3 lets
      // an endpoint answer only the latest ping).
      if (!this.#closeSent && this.#writesPending < MAX_PENDING_PONGS) {
        void this.#send(encodeFrame(Opcode.pong, payload)).catch(() => {});
      }
    } else if (opcode === Opcode.close) {
      if (payload.length === 1) {
        throw new WebSocketProtocolError(CloseCode.protocolError, "A Close payload of one byte");
      }
      this.#readEnded = true;
      // Echo the code (RFC 6455 5.5.1), unless ours went first.
      const code = payload.length >= 2 ? new DataView(payload.buffer).getUint16(0) : null;
      this.#sendClose(code === null ? new Uint8Array(0) : closePayload(echoable(code)));
    } else if (opcode !== Opcode.pong) {
      throw new WebSocketProtocolError(CloseCode.protocolError, `Unknown opcode ${opcode}`);
    }
  }

  /** Fails the connection: Close with the error's code, no more reading. */
  #fail(e: WebSocketProtocolError): void {
    this.#readEnded = true;
    this.#opts.onFault?.(e);
    this.#sendClose(closePayload(e.code, e.message));
  }

  #sendClose(payload: Uint8Array): void {
    if (this.#closeSent || this.#closed) return;
    this.#closeSent = true;
    void this.#send(encodeFrame(Opcode.close, payload)).catch(() => {});
  }

  /** Queues `bytes` behind the writes before it; resolves once they are all on the socket. */
  #send(bytes: Uint8Array): Promise<void> {
    this.#writesPending++;
    const done = this.#tail.then(async () => {
      let written = 0;
      while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
    }).finally(() => this.#writesPending--);
    this.#tail = done.catch(() => {});
    return done;
  }

  async write(bytes: Uint8Array): Promise<number> {
    if (this.#closed || this.#closeSent) throw new ConnectionGone("The WebSocket is closing");
    const n = Math.min(bytes.length, WS_MAX_OUT_FRAME);
    const head = frameHeader(Opcode.binary, n);
    const frame = new Uint8Array(head.length + n);
    frame.set(head);
    frame.set(bytes.subarray(0, n), head.length);
    await this.#send(frame);
    return n;
  }

  /** Our Close (1000): the peer reads what was sent, then the close; reading goes on. */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(new ConnectionGone("The WebSocket is closed"));
    this.#sendClose(closePayload(CloseCode.normal));
    return this.#tail;
  }

  /**
   * Closes the socket: at once if nothing is being written, else once the writes under way
   * (a Close frame, most often) are out, or after a grace period, whichever is first.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#writesPending === 0) {
      closeConn(this.#conn);
      return;
    }
    const timer = setTimeout(() => closeConn(this.#conn), CLOSE_GRACE_MS);
    void this.#tail.then(() => {
      clearTimeout(timer);
      closeConn(this.#conn);
    });
  }

  isGone(error: unknown): boolean {
    return isConnectionGone(error) || error instanceof Deno.errors.UnexpectedEof;
  }
}

/** The code to echo for a peer's Close: its own, unless it may not be sent on the wire. */
function echoable(code: number): number {
  const valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
    (code >= 3000 && code <= 4999);
  return valid ? code : CloseCode.protocolError;
}

function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function assertState(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`WebSocket transport invariant broken: ${what}`);
}
