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
 * reuse its read buffer) or `lend` them (read in place until `keep`), then pull units with
 * `readRaw` or `readFrame` until they return null.
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
  /** The chunk given by `lend`, read in place until `keep`. */
  #lent: Uint8Array | null = null;

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
    this.keep();
    this.#chunks.push(chunk.slice());
    this.#buffered += chunk.length;
  }

  /**
   * Like `push`, without the copy: frames that lie whole inside `chunk` come out of `readFrame`
   * as views of it. The caller must call `keep` before it reuses the memory, and must be done
   * with those frames by then. Saves a copy and two buffers per frame. A chunk lent earlier is
   * kept first (one lent chunk at a time).
   */
  lend(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.keep();
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#lent = chunk;
  }

  /** Copies what is left of the lent chunk, so that the caller may reuse its memory. */
  keep(): void {
    const lent = this.#lent;
    if (lent === null) return;
    this.#lent = null;
    const last = this.#chunks.length - 1;
    if (last < 0 || this.#chunks[last] !== lent) return; // all of it was read
    if (last === 0) {
      this.#chunks[0] = lent.slice(this.#offset);
      this.#offset = 0;
    } else {
      this.#chunks[last] = lent.slice();
    }
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
      const chunk = this.#chunks[0];
      const at = this.#offset;
      if (chunk.length - at >= FRAME_HEADER_BYTES) {
        // The usual case, a whole frame inside one chunk: hand out views, copy nothing.
        const length = frameLength(chunk, at);
        this.#checkLength(length);
        const end = at + FRAME_HEADER_BYTES + length;
        if (end <= chunk.length) {
          const frame = {
            header: chunk.subarray(at, at + FRAME_HEADER_BYTES),
            body: chunk.subarray(at + FRAME_HEADER_BYTES, end),
          };
          this.#buffered -= end - at;
          if (end === chunk.length) this.#dropFirst();
          else this.#offset = end;
          return frame;
        }
      }
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      this.#take(header, 0, FRAME_HEADER_BYTES);
      const length = frameLength(header, 0);
      this.#checkLength(length);
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

  #checkLength(length: number): void {
    if (length < TAG_BYTES) {
      throw new FrameSizeError(`Frame length ${length} is shorter than the 16-byte tag`);
    }
    if (length > this.#maxBody) {
      throw new FrameSizeError(`Frame length ${length} exceeds the maximum of ${this.#maxBody}`);
    }
  }

  /** Drops the first chunk, read to its end. */
  #dropFirst(): void {
    // A fresh empty array when drained: an idle connection keeps no grown backing store.
    if (this.#chunks.length === 1) this.#chunks = [];
    else this.#chunks.shift();
    this.#offset = 0;
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
      if (this.#offset === chunk.length) this.#dropFirst();
    }
  }
}

/** Builds the 4-byte header of a frame whose sealed body is `bodyLength` bytes. */
export function frameHeader(bodyLength: number): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  writeFrameHeader(header, bodyLength);
  return header;
}

/** Writes a frame header (the sealed body's length, u32 big-endian) at the start of `into`. */
export function writeFrameHeader(into: Uint8Array, bodyLength: number): void {
  into[0] = bodyLength >>> 24;
  into[1] = (bodyLength >>> 16) & 0xff;
  into[2] = (bodyLength >>> 8) & 0xff;
  into[3] = bodyLength & 0xff;
}

/** The body length a frame header at `at` gives. */
function frameLength(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}
