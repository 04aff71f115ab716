/**
 * The message layer: a frame's plaintext holds one or more messages back to back, each
 * `type u32 BE | request id u32 BE | body value`.
 */

import { DecodeError } from "./errors.ts";
import { ByteWriter, DEFAULT_MAX_DEPTH, type Value, ValueReader, writeValue } from "./value.ts";

export interface Message {
  type: number;
  /** Echoed in the response; 0 for pushes. */
  id: number;
  body: Value;
}

export const MESSAGE_HEADER_BYTES = 8;
export const MAX_REQUEST_ID = 0xffff_ffff;

/** Appends one message to `w`. */
export function writeMessage(w: ByteWriter, type: number, id: number, body: Value): void {
  if (!isU32(type) || !isU32(id)) {
    throw new RangeError(`Message type ${type} or id ${id} is not a u32`);
  }
  w.u32(type);
  w.u32(id);
  writeValue(w, body);
}

/** Encodes messages into one plaintext. */
export function encodeMessages(messages: readonly Message[]): Uint8Array {
  const w = new ByteWriter();
  for (const m of messages) writeMessage(w, m.type, m.id, m.body);
  return w.finish();
}

/** What decoding a plaintext gave: the messages before any fault, and the fault. */
export interface DecodedMessages {
  messages: Message[];
  /** Set when the plaintext went bad part-way; `id` is the faulty message's id when readable. */
  error?: { id: number; cause: DecodeError };
  /**
   * Values in each message's body (what decoding it cost), in order, the malformed one last;
   * set when the caller asked for them.
   */
  values?: number[];
}

/**
 * Decodes every message in a plaintext. A malformed message stops decoding there (its end
 * cannot be trusted), keeping the messages before it.
 */
export function decodeMessages(
  plaintext: Uint8Array,
  maxDepth = DEFAULT_MAX_DEPTH,
  maxValues = Infinity,
  /** If given, receives how many values each message's body holds (see `values`). */
  values?: number[],
): DecodedMessages {
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  const reader = new ValueReader(plaintext, maxValues);
  const messages: Message[] = [];
  if (plaintext.length === 0) {
    return { messages, error: { id: 0, cause: new DecodeError("Frame holds no message") } };
  }
  let at = 0;
  while (at < plaintext.length) {
    if (plaintext.length - at < MESSAGE_HEADER_BYTES) {
      const cause = new DecodeError(`Message header needs 8 bytes at offset ${at}`);
      return { messages, error: { id: 0, cause } };
    }
    const type = view.getUint32(at);
    const id = view.getUint32(at + 4);
    const before = reader.values;
    try {
      const body = reader.read(at + MESSAGE_HEADER_BYTES, plaintext.length, maxDepth);
      messages.push({ type, id, body });
      values?.push(reader.values - before);
      at = reader.next;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      values?.push(reader.values - before);
      return { messages, error: { id, cause: e } };
    }
  }
  return { messages };
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_REQUEST_ID;
}
