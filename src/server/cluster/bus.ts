/**
 * The subjects Parley nodes talk on, and the envelope of what they say. Everything is core NATS
 * (at most once): what must not be lost is in JetStream already, and a node that may have
 * missed something (a NATS reconnect, a gap in a node's presence versions) asks again.
 *
 *   <p>.hub.beat             every node, every second: {node, v, n} (its presence version)
 *   <p>.hub.presence         a user came or went: {op, node, v, user, name, at}
 *   <p>.hub.world            a world message's PASS body, for every node's sessions
 *   <p>.hub.end              end a user's sessions (credentials changed): {user, reason, family?}
 *   <p>.hub.node.<id>.push   a push for a user on that node: {u, t} + the body's value bytes
 *   <p>.hub.node.<id>.poke   users on that node with something new in their inbox: {users}
 *   <p>.hub.node.<id>.roster request: that node's online users
 *   <p>.hub.node.<id>.files  request: a file transfer's answer, ack or cancel, to its relay
 */

import { decodeValue, encodeValue, type Value } from "../../protocol/value.ts";

export class Subjects {
  readonly beat: string;
  readonly presence: string;
  readonly world: string;
  readonly end: string;

  constructor(readonly prefix: string) {
    this.beat = `${prefix}.hub.beat`;
    this.presence = `${prefix}.hub.presence`;
    this.world = `${prefix}.hub.world`;
    this.end = `${prefix}.hub.end`;
  }

  node(id: string, what: "push" | "poke" | "roster" | "files"): string {
    return `${this.prefix}.hub.node.${id}.${what}`;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JSON header, then (optionally) one protocol value: [u32 header length][header][value]. */
export function envelope(header: unknown, body?: Value): Uint8Array {
  const head = encoder.encode(JSON.stringify(header));
  const value = body === undefined ? new Uint8Array(0) : encodeValue(body);
  const out = new Uint8Array(4 + head.length + value.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(value, 4 + head.length);
  return out;
}

/** The header and the value of an envelope; throws on one that is not well formed. */
export function openEnvelope<H>(bytes: Uint8Array): { header: H; body: Value | undefined } {
  if (bytes.length < 4) throw new Error("A hub envelope shorter than its length");
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + length > bytes.length) throw new Error("A hub envelope's header runs past its end");
  const header = JSON.parse(decoder.decode(bytes.subarray(4, 4 + length))) as H;
  const rest = bytes.subarray(4 + length);
  return { header, body: rest.length === 0 ? undefined : decodeValue(rest) };
}
