/**
 * What the client library hands an application owns its bytes. The decoder cuts small byte
 * values (message ids) from a shared slab (see SLAB_VALUE_MAX_BYTES): an application that kept
 * such an id, stored it or posted it to a worker would keep, store or copy the whole slab with
 * it, other messages' ids included.
 */

import { ownBytes, type Value } from "../protocol/value.ts";

/** `v` with every byte value in it owning its buffer; dicts and lists are changed in place. */
export function owned(v: Value): Value {
  if (v instanceof Uint8Array) return ownBytes(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const item = v[i];
      if (typeof item === "object" && item !== null) v[i] = owned(item);
    }
  } else if (typeof v === "object" && v !== null && !(v instanceof Date)) {
    const dict = v as { [key: string]: Value };
    for (const key in dict) {
      const item = dict[key];
      if (typeof item === "object" && item !== null) dict[key] = owned(item);
    }
  }
  return v;
}
