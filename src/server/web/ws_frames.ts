/**
 * RFC 6455 framing as pure functions over bytes: the opening handshake's accept key, frame
 * headers, masking, close payloads. The socket side is ws_transport.ts.
 */

import { createHash } from "node:crypto";

export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Close codes used here (RFC 6455 7.4.1). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  noStatus: 1005,
  tooBig: 1009,
} as const;

/** A control frame's payload is at most this long (RFC 6455 5.5). */
export const MAX_CONTROL_PAYLOAD = 125;
/** The longest header: 2 bytes, a 64-bit length, a 4-byte mask. */
export const MAX_HEADER_BYTES = 14;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** Whether `key` is a Sec-WebSocket-Key: 16 bytes in base64 (RFC 6455 4.1). */
export function isClientKey(key: string | undefined): key is string {
  return key !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(key);
}

export interface FrameHeader {
  fin: boolean;
  /** The three reserved bits; no extension is negotiated, so they must be 0. */
  rsv: number;
  opcode: number;
  /** The mask key, or null if the frame is not masked. */
  mask: Uint8Array | null;
  length: number;
  /** Bytes of the header itself. */
  headerBytes: number;
}

/** A frame the peer got wrong: the connection is failed with `code`. */
export class WebSocketProtocolError extends Error {
  override name = "WebSocketProtocolError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/**
 * The header at `buf[offset, end)`, or null if more bytes are needed. The mask is copied, so
 * the buffer may be reused.
 */
export function parseFrameHeader(buf: Uint8Array, offset: number, end: number): FrameHeader | null {
  if (end - offset < 2) return null;
  const b0 = buf[offset];
  const b1 = buf[offset + 1];
  const masked = (b1 & 0x80) !== 0;
  const short = b1 & 0x7f;
  const extra = short === 126 ? 2 : short === 127 ? 8 : 0;
  const headerBytes = 2 + extra + (masked ? 4 : 0);
  if (end - offset < headerBytes) return null;
  let length = short;
  const view = new DataView(buf.buffer, buf.byteOffset + offset, headerBytes);
  if (short === 126) {
    length = view.getUint16(2);
  } else if (short === 127) {
    const high = view.getUint32(2);
    // 2^53 and up cannot be counted exactly; no limit here is anywhere near it.
    if (high >= 0x200000) {
      throw new WebSocketProtocolError(CloseCode.tooBig, "A frame length is out of range");
    }
    length = high * 2 ** 32 + view.getUint32(6);
  }
  const mask = masked ? buf.slice(offset + 2 + extra, offset + headerBytes) : null;
  return {
    fin: (b0 & 0x80) !== 0,
    rsv: (b0 >> 4) & 7,
    opcode: b0 & 0x0f,
    mask,
    length,
    headerBytes,
  };
}

/** XORs `bytes` in place with `mask`, the first byte being payload byte number `position`. */
export function unmask(bytes: Uint8Array, mask: Uint8Array, position: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] ^= mask[(position + i) & 3];
}

/** The header of an unmasked (server-to-client) frame with FIN set. */
export function frameHeader(opcode: number, length: number): Uint8Array {
  const extra = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const head = new Uint8Array(2 + extra);
  head[0] = 0x80 | opcode;
  const view = new DataView(head.buffer);
  if (extra === 0) {
    head[1] = length;
  } else if (extra === 2) {
    head[1] = 126;
    view.setUint16(2, length);
  } else {
    head[1] = 127;
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
  }
  return head;
}

/** A whole unmasked frame with FIN set. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const head = frameHeader(opcode, payload.length);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** A Close frame's payload: the code, then a short UTF-8 reason (cut to fit 125 bytes). */
export function closePayload(code: number, reason = ""): Uint8Array {
  const text = new TextEncoder().encode(reason).subarray(0, MAX_CONTROL_PAYLOAD - 2);
  const out = new Uint8Array(2 + text.length);
  new DataView(out.buffer).setUint16(0, code);
  out.set(text, 2);
  return out;
}
