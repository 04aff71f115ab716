/**
 * Everything the delivery simulation knows of the server's and the store's shapes, in one place:
 * how a process opens its inbox store over a KV (as openKvStore does), how a session's inbox
 * pump is made without a socket, and how the store lays out its rows (to recount them). When
 * those shapes change, this file changes, not the simulation.
 */

import type { Clock } from "../../src/clock/clock.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { decodeValue, encodeValue, type Value } from "../../src/protocol/value.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { InboxPump } from "../../src/server/delivery.ts";
import type { Session } from "../../src/server/session.ts";
import { GroupCommitter } from "../../src/store/committer.ts";
import { KvInboxStore } from "../../src/store/inbox.ts";
import type { ChatMessage, InboxItem, InboxStore } from "../../src/store/types.ts";

/** One process's inbox store. */
export interface SimStore {
  inbox: InboxStore;
  /** A clean shutdown: what is queued is committed (openKvStore's close, less the KV's). */
  close(): Promise<void>;
}

/** Opens the inbox store as openKvStore does: sweep blobs a crash left, then count every inbox. */
export async function openSimStore(kv: Deno.Kv, clock: Clock): Promise<SimStore> {
  const committer = new GroupCommitter(kv, clock);
  const inbox = new KvInboxStore(kv, committer);
  await inbox.sweep();
  await inbox.load();
  return {
    inbox,
    close: async () => {
      await inbox.removalsDone();
      await committer.close();
    },
  };
}

/** A PASS as the recipient's client decodes it off the wire. */
export interface Pass {
  seq: number;
  id: Uint8Array;
  from: string;
  data: string | Uint8Array;
  group?: number;
}

/** A session as the pump sees it: PASS pushes are encoded at once, as the real one seals them. */
export class SimSession {
  closed = false;
  constructor(
    private readonly onPass: (pass: Pass) => void,
    /** The pump's retries wait on it: the simulation's time. */
    readonly clock: Clock,
  ) {}

  push(type: number, body: Value): void {
    if (this.closed) return;
    if (type !== MsgType.PASS) throw new Error(`Unexpected push of type ${type}`);
    const v = decodeValue(encodeValue(body)) as { [key: string]: Value };
    this.onPass({
      seq: v.seq as number,
      id: v.id as Uint8Array,
      from: v.source_username as string,
      data: v.data as string | Uint8Array,
      group: v.group_id as number | undefined,
    });
  }
}

/** Where the pump logs; an unexpected error fails the run. */
export interface SimLog {
  error(event: string, fields: Record<string, unknown>): void;
}

/** The inbox pump of one logged-in session over `inbox`. */
export function makePump(
  inbox: InboxStore,
  session: SimSession,
  user: string,
  windowBytes: number,
  log: SimLog,
): InboxPump {
  const ctx = {
    store: { inbox },
    metrics: { messageOut: () => {} },
    log: { error: log.error, info: () => {}, warn: () => {} },
  } as unknown as ServerContext;
  return new InboxPump(ctx, session as unknown as Session, user, windowBytes);
}

/** A committed row as the inbox store lays it out (see the top of src/store/inbox.ts). */
export type StoredRow =
  | {
    kind: "inbox";
    user: string;
    seq: number;
    /** The sender's identity (lowercase). */
    sender: string;
    size: number;
    cost: number;
    blob: { id: string; chunks: number; size: number } | null;
  }
  | { kind: "blob"; id: string; bytes: number }
  | { kind: "ref"; id: string; user: string; seq: number }
  | { kind: "pending"; id: string };

/** What a committed row is, or null for a row the inbox store does not write. */
export function storedRow(key: readonly Deno.KvKeyPart[], value: unknown): StoredRow | null {
  switch (key[0]) {
    case "inbox": {
      const v = value as {
        message: ChatMessage;
        size: number;
        cost?: number;
        blob?: { id: string; chunks: number; size: number };
      };
      return {
        kind: "inbox",
        user: key[1] as string,
        seq: key[2] as number,
        sender: v.message.from.toLowerCase(),
        size: v.size,
        cost: v.cost ?? v.size,
        blob: v.blob ?? null,
      };
    }
    case "blob":
      return { kind: "blob", id: key[1] as string, bytes: (value as Uint8Array).length };
    case "blob_ref":
      return { kind: "ref", id: key[1] as string, user: key[2] as string, seq: key[3] as number };
    case "blob_pending":
      return { kind: "pending", id: key[1] as string };
    default:
      return null;
  }
}

/** The queued items' recipients and seqs, for offering them to the recipients' pumps. */
export function itemUser(item: InboxItem): string {
  return item.user;
}

export type { ChatMessage, InboxItem };
