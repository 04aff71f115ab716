/**
 * The frame layer: `length u32 BE | ciphertext | 16-byte GCM tag`, where length counts the
 * ciphertext and the tag. This module only cuts a byte stream into frames (and into the raw
 * handshake blocks that precede them); sealing lives in src/crypto/. Pure: no I/O.
 */

import { DecodeError, FrameSizeError } from "./errors.ts";

export const FRAME_HEADER_BYTES = 4;
export const TAG_BYTES = 16;

/** One frame as read from the wire: the 4 header bytes (the AAD) and the sealed body. */
export interface SealedFrame {
  header: Uint8Array;
  body: Uint8Array;
}

/**
 * Incremental stream cutter. `push` chunks as they arrive (they are copied, so the caller may
 * reuse its read buffer), then pull units with `readRaw` or `readFrame` until they return null.
 * A frame's length is checked against the maximum before its buffer is allocated.
 */
export class FrameDecoder {
  #maxBody: number;
  #chunks: Uint8Array[] = [];
  #offset = 0; // read position inside #chunks[0]
  #buffered = 0;
  #header: Uint8Array | null = null; // header of the frame being filled
  #body: Uint8Array | null = null;
  #filled = 0;

  /** `maxPlaintext` is the largest plaintext a frame may carry; the tag comes on top. */
  constructor(maxPlaintext: number) {
    this.#maxBody = maxPlaintext + TAG_BYTES;
  }

  /** Changes the largest plaintext accepted from the next frame on (smaller before login). */
  setMaxPlaintext(maxPlaintext: number): void {
    this.#maxBody = maxPlaintext + TAG_BYTES;
  }

  /** Bytes received and not yet handed out. */
  get buffered(): number {
    return this.#buffered + (this.#body ? FRAME_HEADER_BYTES + this.#filled : 0);
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk.slice());
    this.#buffered += chunk.length;
  }

  /** Takes exactly `n` raw bytes (for the handshake), or null until that many have arrived. */
  readRaw(n: number): Uint8Array | null {
    if (this.#body) throw new DecodeError("readRaw() called inside a frame");
    if (this.#buffered < n) return null;
    const out = new Uint8Array(n);
    this.#take(out, 0, n);
    return out;
  }

  /** Takes the next complete frame, or null until one has fully arrived. */
  readFrame(): SealedFrame | null {
    if (!this.#body) {
      if (this.#buffered < FRAME_HEADER_BYTES) return null;
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      this.#take(header, 0, FRAME_HEADER_BYTES);
      const length = new DataView(header.buffer).getUint32(0);
      if (length < TAG_BYTES) {
        throw new FrameSizeError(`Frame length ${length} is shorter than the 16-byte tag`);
      }
      if (length > this.#maxBody) {
        throw new FrameSizeError(`Frame length ${length} exceeds the maximum of ${this.#maxBody}`);
      }
      this.#header = header;
      this.#body = new Uint8Array(length);
      this.#filled = 0;
    }
    const body = this.#body;
    const n = Math.min(this.#buffered, body.length - this.#filled);
    this.#take(body, this.#filled, n);
    this.#filled += n;
    if (this.#filled < body.length) return null;
    const frame = { header: this.#header!, body };
    this.#header = null;
    this.#body = null;
    this.#filled = 0;
    return frame;
  }

  #take(into: Uint8Array, at: number, n: number): void {
    while (n > 0) {
      const chunk = this.#chunks[0];
      const available = chunk.length - this.#offset;
      const count = Math.min(available, n);
      into.set(chunk.subarray(this.#offset, this.#offset + count), at);
      at += count;
      n -= count;
      this.#buffered -= count;
      this.#offset += count;
      if (this.#offset === chunk.length) {
        // A fresh empty array when drained: an idle connection keeps no grown backing store.
        if (this.#chunks.length === 1) this.#chunks = [];
        else this.#chunks.shift();
        this.#offset = 0;
      }
    }
  }
}

/** Builds the 4-byte header of a frame whose sealed body is `bodyLength` bytes. */
export function frameHeader(bodyLength: number): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, bodyLength);
  return header;
}
