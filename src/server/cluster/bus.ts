/**
 * The hub's envelope: a frame of src/cluster/bus.ts (where the subjects are listed) whose rest
 * is one protocol value, or nothing.
 */

import { decodeValue, encodeValue, type Value } from "../../protocol/value.ts";
import { frame, openFrame } from "../../cluster/bus.ts";

export { type EndHeader, Subjects } from "../../cluster/bus.ts";

/** A JSON header, then (optionally) one protocol value: [u32 header length][header][value]. */
export function envelope(header: unknown, body?: Value): Uint8Array {
  return frame(header, body === undefined ? undefined : encodeValue(body));
}

/** The header and the value of an envelope; throws on one that is not well formed. */
export function openEnvelope<H>(bytes: Uint8Array): { header: H; body: Value | undefined } {
  const { header, rest } = openFrame<H>(bytes);
  return { header, body: rest.length === 0 ? undefined : decodeValue(rest) };
}
