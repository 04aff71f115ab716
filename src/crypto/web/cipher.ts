/**
 * The session cipher over WebCrypto: AES-256-GCM per direction, exactly as cipher.ts (nonce =
 * 4 zero bytes | u64 BE frame counter, the 4-byte length header as associated data, the 16-byte
 * tag after the ciphertext). Frames sealed here open with cipher.ts's FrameOpener and the other
 * way round.
 *
 * WebCrypto is async, and a frame's counter is not sent: the caller must seal (and open) one
 * frame at a time, in order, and write the frames in the order they were sealed. Each call takes
 * its counter when it is made, so calls made in order number their frames in order.
 */

import { FrameAuthError } from "../../protocol/errors.ts";
import {
  FRAME_HEADER_BYTES,
  type SealedFrame,
  TAG_BYTES,
  writeFrameHeader,
} from "../../protocol/frame.ts";
import { SESSION_KEY_BYTES } from "../handshake_layout.ts";
import { subtle } from "./handshake.ts";

export const NONCE_BYTES = 12;
/** Past 2^53 frames the counter would lose precision; a connection never gets near it. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
/** The largest body a frame header can announce. */
const MAX_BODY_BYTES = 0xffff_ffff;

/** The nonce of frame `counter`: 4 zero bytes, then the counter as u64 big-endian. */
export function frameNonce(counter: number): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new RangeError(`Frame counter ${counter} is not a safe integer`);
  }
  const nonce = new Uint8Array(NONCE_BYTES);
  const view = new DataView(nonce.buffer);
  view.setUint32(4, Math.floor(counter / 0x1_0000_0000));
  view.setUint32(8, counter >>> 0);
  return nonce;
}

async function importFrameKey(key: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  if (key.length !== SESSION_KEY_BYTES) {
    throw new RangeError(`A frame key is ${SESSION_KEY_BYTES} bytes`);
  }
  return await subtle().importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    usage,
  ]);
}

/** Seals outgoing plaintexts into frames, counting from 0. */
export class WebFrameSealer {
  #counter = 0;
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  static async create(key: Uint8Array): Promise<WebFrameSealer> {
    return new WebFrameSealer(await importFrameKey(key, "encrypt"));
  }

  /** Frames sealed (or being sealed) so far: the next frame's counter. */
  get counter(): number {
    return this.#counter;
  }

  /** Returns the whole frame: header, ciphertext and tag. */
  async seal(plaintext: Uint8Array): Promise<Uint8Array> {
    if (this.#counter >= MAX_COUNTER) throw new RangeError("Frame counter exhausted");
    const bodyLength = plaintext.length + TAG_BYTES;
    if (bodyLength > MAX_BODY_BYTES) throw new RangeError("Frame too large for its header");
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    writeFrameHeader(header, bodyLength);
    // The counter is taken now, before the await: calls made in order get counters in order.
    const iv = frameNonce(this.#counter++);
    const body = new Uint8Array(
      await subtle().encrypt(
        { name: "AES-GCM", iv, additionalData: header, tagLength: TAG_BYTES * 8 },
        this.#key,
        plaintext as Uint8Array<ArrayBuffer>,
      ),
    );
    if (body.length !== bodyLength) {
      throw new Error(`AES-GCM gave ${body.length} bytes for a ${bodyLength}-byte body`);
    }
    const frame = new Uint8Array(FRAME_HEADER_BYTES + bodyLength);
    frame.set(header);
    frame.set(body, FRAME_HEADER_BYTES);
    return frame;
  }
}

/** Opens incoming frames in order; any failure is final for the connection. */
export class WebFrameOpener {
  #counter = 0;
  #failed = false;
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  static async create(key: Uint8Array): Promise<WebFrameOpener> {
    return new WebFrameOpener(await importFrameKey(key, "decrypt"));
  }

  /** Returns the plaintext in a fresh array; throws FrameAuthError for a frame that fails. */
  async open(frame: SealedFrame): Promise<Uint8Array> {
    if (this.#failed) throw new FrameAuthError("An earlier frame failed authentication");
    if (frame.header.length !== FRAME_HEADER_BYTES || frame.body.length < TAG_BYTES) {
      this.#failed = true;
      throw new FrameAuthError("Frame too short to carry its tag");
    }
    const iv = frameNonce(this.#counter++);
    try {
      return new Uint8Array(
        await subtle().decrypt(
          {
            name: "AES-GCM",
            iv,
            additionalData: frame.header as Uint8Array<ArrayBuffer>,
            tagLength: TAG_BYTES * 8,
          },
          this.#key,
          frame.body as Uint8Array<ArrayBuffer>,
        ),
      );
    } catch (e) {
      this.#failed = true;
      throw new FrameAuthError("Frame failed authentication", { cause: e });
    }
  }
}
