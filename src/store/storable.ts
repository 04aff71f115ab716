/**
 * What reaches the store owns its bytes. Deno KV serialises a Uint8Array with its whole buffer,
 * so a view stored as is would carry the rest of that buffer into the row: small byte values
 * decoded from the wire (message ids) are views of a shared slab (see SLAB_VALUE_MAX_BYTES), and
 * a client may send any bytes as a view of a pool of its own.
 */

import { ownBytes } from "../protocol/value.ts";
import type { ChatMessage } from "./types.ts";

/** True when `bytes` spans its whole buffer, so that storing it stores nothing else. */
export function isOwned(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}

/** Throws, naming `what`, when `bytes` is a view of a larger buffer: a bug at the store's door. */
export function assertOwned(bytes: Uint8Array, what: string): void {
  if (!isOwned(bytes)) {
    throw new Error(
      `${what} is a view of ${bytes.byteLength} bytes into a buffer of ${bytes.buffer.byteLength}; it must be copied before it is stored`,
    );
  }
}

/**
 * The store's door for chat messages: `m` itself when its bytes own their buffers, else a copy
 * whose bytes do. Every path that writes a message to the store passes it through here.
 */
export function storable(m: ChatMessage): ChatMessage {
  const id = ownBytes(m.id);
  const image = m.image && ownBytes(m.image);
  if (id === m.id && image === m.image) return m;
  const copy = { ...m, id };
  if (image) copy.image = image;
  assertStorable(copy);
  return copy;
}

/** Throws when a message's id or image would carry another buffer into the store. */
export function assertStorable(m: ChatMessage): void {
  assertOwned(m.id, "A stored message's id");
  if (m.image) assertOwned(m.image, "A stored message's image");
}
