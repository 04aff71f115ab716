/**
 * A chat message as it may be stored. Small byte values decoded from the wire (message ids) are
 * views of a shared slab (see SLAB_VALUE_MAX_BYTES), and Deno KV serialises a view with its
 * whole buffer: a stored row would carry the slab, other messages' ids with it.
 */

import { ownBytes } from "../protocol/value.ts";
import type { ChatMessage } from "./types.ts";

/** `m` itself when its bytes own their buffers, else a copy whose bytes do. */
export function storable(m: ChatMessage): ChatMessage {
  const id = ownBytes(m.id);
  const image = m.image && ownBytes(m.image);
  if (id === m.id && image === m.image) return m;
  const copy = { ...m, id };
  if (image) copy.image = image;
  return copy;
}
