/**
 * The subjects Parley nodes talk on, and the frame of what they say: shared by the cluster hub
 * (src/server/cluster/) and `parley admin --cluster`, which ends sessions and asks for rosters
 * the way a node does. Everything is core NATS (at most once): what must not be lost is in
 * JetStream already, and a node that may have missed something asks again.
 *
 *   <p>.hub.beat             every node, every second: {node, v} (its presence version)
 *   <p>.hub.presence         a user came or went: {op, node, v, user, name, at}
 *   <p>.hub.world            a world message's PASS body, for every node's sessions
 *   <p>.hub.end              end a user's sessions (credentials changed): {node, user, reason, family?, v?}
 *   <p>.hub.node.<id>.push   a push for a user on that node: {u, t} + the body's value bytes
 *   <p>.hub.node.<id>.poke   users on that node with something new in their inbox: {users}
 *   <p>.hub.node.<id>.roster request: that node's online users ({v, users: [[user, name, at, family]]})
 *   <p>.hub.node.<id>.files  request: a file transfer's answer, ack or cancel, to its relay
 *
 * A frame is [u32 header length][JSON header][rest]; the hub puts one protocol value in the
 * rest (src/server/cluster/bus.ts), this layer only carries its bytes.
 */

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

/** What `<p>.hub.end` carries: end `user`'s sessions (only `family`'s, if given). */
export interface EndHeader {
  /** The sender: its own sessions are not ended by its message. */
  node: string;
  user: string;
  reason: string;
  family?: string;
  /**
   * The sending node's event version (shared with its presence events), so that a node that
   * misses the end sees a gap; absent from `parley admin`'s.
   */
  v?: number;
}

/**
 * The sender name `parley admin` uses: node ids are numbers (cluster_hub.ts newNodeId), so no
 * node takes an admin's message for its own.
 */
export const ADMIN_NODE = "admin";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JSON header, then `rest` (bytes the header's reader knows how to read). */
export function frame(header: unknown, rest: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + rest.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(rest, 4 + head.length);
  return out;
}

/** The header and the rest of a frame; throws on one that is not well formed. */
export function openFrame<H>(bytes: Uint8Array): { header: H; rest: Uint8Array } {
  if (bytes.length < 4) throw new Error("A hub envelope shorter than its length");
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + length > bytes.length) throw new Error("A hub envelope's header runs past its end");
  const header = JSON.parse(decoder.decode(bytes.subarray(4, 4 + length))) as H;
  return { header, rest: bytes.subarray(4 + length) };
}

/** The message that ends `user`'s sessions on every node but `node`. */
export function endMessage(header: EndHeader): Uint8Array {
  return frame(header);
}
