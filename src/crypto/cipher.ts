/**
 * The session cipher: AES-256-GCM per direction, nonce = 4 zero bytes | u64 BE frame counter.
 * The counter is never sent, so a replayed, reordered or dropped frame fails authentication.
 * The 4-byte length header is the associated data.
 */

import { FrameAuthError } from "../protocol/errors.ts";
import { aesGcm, KEY_BYTES, NONCE_BYTES } from "./aes_gcm.ts";
import {
  FRAME_HEADER_BYTES,
  type SealedFrame,
  TAG_BYTES,
  writeFrameHeader,
} from "../protocol/frame.ts";

/** Past 2^53 frames the counter would lose precision; a connection never gets near it. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/**
 * One nonce buffer for every connection: it is only read while a frame is sealed or opened,
 * and an idle connection then holds no nonce of its own.
 */
const nonce = new Uint8Array(NONCE_BYTES);
const nonceView = new DataView(nonce.buffer);

function nonceFor(counter: number): Uint8Array {
  nonceView.setUint32(4, Math.floor(counter / 0x1_0000_0000));
  nonceView.setUint32(8, counter >>> 0);
  return nonce;
}

/** Seals outgoing plaintexts into frames, counting from 0. */
export class FrameSealer {
  #counter = 0;
  // The key's memory and offset, not a view of it: an idle connection then holds one buffer for
  // both its keys and no view objects; a view is made per frame.
  readonly #keyBuffer: ArrayBufferLike;
  readonly #keyOffset: number;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError(`A frame key is ${KEY_BYTES} bytes`);
    this.#keyBuffer = key.buffer;
    this.#keyOffset = key.byteOffset;
  }

  /** Returns the whole frame: header, ciphertext and tag. */
  seal(plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(FRAME_HEADER_BYTES + plaintext.length + TAG_BYTES);
    this.sealInto(plaintext, out);
    return out;
  }

  /**
   * Writes the whole frame into `out`, which must be 20 bytes longer than `plaintext` and must
   * not overlap it. The channel seals into pooled buffers this way: a fresh ArrayBuffer costs
   * 1-3 µs in Deno, more than sealing a small frame.
   */
  sealInto(plaintext: Uint8Array, out: Uint8Array): void {
    if (this.#counter >= MAX_COUNTER) throw new RangeError("Frame counter exhausted");
    const bodyLength = plaintext.length + TAG_BYTES;
    if (out.length !== FRAME_HEADER_BYTES + bodyLength) {
      throw new RangeError(`A frame of ${plaintext.length} bytes needs ${bodyLength + 4} bytes`);
    }
    writeFrameHeader(out, bodyLength);
    aesGcm().seal(
      new Uint8Array(this.#keyBuffer, this.#keyOffset, KEY_BYTES),
      nonceFor(this.#counter++),
      out.subarray(0, FRAME_HEADER_BYTES),
      plaintext,
      out.subarray(FRAME_HEADER_BYTES),
    );
  }
}

/** Opens incoming frames in order; any failure is final for the connection. */
export class FrameOpener {
  #counter = 0;
  // The key's memory and offset, not a view of it: an idle connection then holds one buffer for
  // both its keys and no view objects; a view is made per frame.
  readonly #keyBuffer: ArrayBufferLike;
  readonly #keyOffset: number;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError(`A frame key is ${KEY_BYTES} bytes`);
    this.#keyBuffer = key.buffer;
    this.#keyOffset = key.byteOffset;
  }

  /** Returns the plaintext in a fresh array. */
  open(frame: SealedFrame): Uint8Array {
    const out = new Uint8Array(frame.body.length - TAG_BYTES);
    this.#open(frame, out);
    return out;
  }

  /**
   * Decrypts over the frame's own ciphertext and returns the plaintext as a view of the frame's
   * body: no allocation. The channel decodes it at once, before its read buffer is reused.
   */
  openInPlace(frame: SealedFrame): Uint8Array {
    const out = frame.body.subarray(0, frame.body.length - TAG_BYTES);
    this.#open(frame, out);
    return out;
  }

  #open(frame: SealedFrame, out: Uint8Array): void {
    const { header, body } = frame;
    const split = body.length - TAG_BYTES;
    try {
      aesGcm().open(
        new Uint8Array(this.#keyBuffer, this.#keyOffset, KEY_BYTES),
        nonceFor(this.#counter++),
        header,
        body.subarray(0, split),
        body.subarray(split),
        out,
      );
    } catch (e) {
      throw new FrameAuthError("Frame failed authentication", { cause: e });
    }
  }
}
