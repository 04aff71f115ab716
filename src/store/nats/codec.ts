/**
 * Chat messages as the NATS store keeps them: the protocol's value codec (src/protocol/value.ts),
 * which carries bytes and dates as they are, where JSON would turn an image into base64. What
 * comes back owns its bytes (`storable`): decoded ids are views of a shared slab.
 */

import { DecodeError } from "../../protocol/errors.ts";
import { decodeValue, encodeValue, type Value } from "../../protocol/value.ts";
import { storable } from "../storable.ts";
import type { ChatMessage } from "../types.ts";

/** Where a message's content stored once lives (blobs.ts). */
export interface BlobRef {
  /** Random, hex: names the blob's subject and its reference count's key. */
  id: string;
  bytes: number;
  /** The blob holds the message's text in UTF-8 (absent: its image). */
  text?: true;
}

/** One inbox message in the stream: the message (its content maybe in a blob) and its counts. */
export interface InboxRecord {
  message: ChatMessage;
  size: number;
  cost: number;
  blob?: BlobRef;
}

type Dict = { [key: string]: Value };

function messageValue(m: ChatMessage): Dict {
  const v: Dict = { id: m.id, time: m.time, from: m.from, kind: m.kind };
  if (m.to !== undefined) v.to = m.to;
  if (m.group !== undefined) v.group = { id: m.group.id, name: m.group.name };
  if (m.world) v.world = true;
  if (m.text !== undefined) v.text = m.text;
  if (m.image !== undefined) v.image = m.image;
  if (m.name !== undefined) v.name = m.name;
  return v;
}

function field<T>(d: Dict, key: string, check: (v: Value) => boolean): T {
  const v = d[key];
  if (!check(v)) throw new DecodeError(`A stored message's field "${key}" is malformed`);
  return v as T;
}

const isDict = (v: Value): boolean =>
  typeof v === "object" && v !== null && !(v instanceof Uint8Array) && !(v instanceof Date) &&
  !Array.isArray(v);
const isStr = (v: Value) => typeof v === "string";
const isInt = (v: Value) => typeof v === "number";
const isBytes = (v: Value) => v instanceof Uint8Array;
const optional = (check: (v: Value) => boolean) => (v: Value) => v === undefined || check(v);

function messageOf(d: Dict): ChatMessage {
  const m: ChatMessage = {
    id: field(d, "id", isBytes),
    time: field(d, "time", (v) => v instanceof Date),
    from: field(d, "from", isStr),
    kind: field(d, "kind", (v) => v === "text" || v === "image"),
  };
  const to = field<string | undefined>(d, "to", optional(isStr));
  if (to !== undefined) m.to = to;
  const group = field<Dict | undefined>(d, "group", optional(isDict));
  if (group !== undefined) {
    m.group = { id: field(group, "id", isInt), name: field(group, "name", isStr) };
  }
  if (d.world === true) m.world = true;
  const text = field<string | undefined>(d, "text", optional(isStr));
  if (text !== undefined) m.text = text;
  const image = field<Uint8Array | undefined>(d, "image", optional(isBytes));
  if (image !== undefined) m.image = image;
  const name = field<string | undefined>(d, "name", optional(isStr));
  if (name !== undefined) m.name = name;
  return storable(m);
}

export function encodeMessage(m: ChatMessage): Uint8Array {
  return encodeValue(messageValue(m));
}

export function decodeMessage(bytes: Uint8Array): ChatMessage {
  const v = decodeValue(bytes);
  if (!isDict(v)) throw new DecodeError("A stored message is not a dict");
  return messageOf(v as Dict);
}

export function encodeRecord(r: InboxRecord): Uint8Array {
  const v: Dict = { m: messageValue(r.message), size: r.size, cost: r.cost };
  if (r.blob) {
    const b: Dict = { id: r.blob.id, bytes: r.blob.bytes };
    if (r.blob.text) b.text = true;
    v.blob = b;
  }
  return encodeValue(v);
}

export function decodeRecord(bytes: Uint8Array): InboxRecord {
  const v = decodeValue(bytes);
  if (!isDict(v)) throw new DecodeError("A stored inbox record is not a dict");
  const d = v as Dict;
  const r: InboxRecord = {
    message: messageOf(field(d, "m", isDict)),
    size: field(d, "size", isInt),
    cost: field(d, "cost", isInt),
  };
  const blob = field<Dict | undefined>(d, "blob", optional(isDict));
  if (blob !== undefined) {
    r.blob = { id: field(blob, "id", isStr), bytes: field(blob, "bytes", isInt) };
    if (blob.text === true) r.blob.text = true;
  }
  return r;
}
