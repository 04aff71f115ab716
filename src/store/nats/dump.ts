/**
 * Reading a NATS store's streams whole, for `parley admin --cluster` (listings, backup): which
 * streams a prefix has, and every message of one stream up to its last sequence at the start,
 * in order, through an ordered consumer (one pass, pulled in batches; no writes, nothing kept).
 * A live cluster goes on writing meanwhile: messages deleted during the pass are not seen, and
 * those added after its start are left out.
 */

import type { StreamInfo } from "../../cluster/nats.ts";
import { invariant } from "../../invariant/invariant.ts";
import { nextBySubject } from "./blobs.ts";
import type { NatsStoreContext } from "./context.ts";

/** Nothing delivered for this long: the pass asks the leader whether anything is left. */
const IDLE_MS = 2000;

/** A stream of the store: `<prefix>_<kind>` or the KV bucket `<prefix>_<kind>`. */
export interface StoreStream {
  kind: string;
  /** A KV bucket (stream `KV_<prefix>_<kind>`). */
  kv: boolean;
  info: StreamInfo;
}

export interface DumpedMessage {
  seq: number;
  subject: string;
  /** Headers as stored (each name's values); absent when there are none. */
  headers?: Record<string, string[]>;
  data: Uint8Array;
}

/** The streams and buckets of the store under `ctx.prefix`, by name. */
export async function storeStreams(ctx: NatsStoreContext): Promise<StoreStream[]> {
  const out: StoreStream[] = [];
  const kvPrefix = `KV_${ctx.prefix}_`;
  const plain = `${ctx.prefix}_`;
  for await (const info of ctx.jsm.streams.list()) {
    const name = info.config.name;
    if (name.startsWith(kvPrefix)) {
      out.push({ kind: name.slice(kvPrefix.length), kv: true, info });
    } else if (name.startsWith(plain)) {
      out.push({ kind: name.slice(plain.length), kv: false, info });
    }
  }
  return out.sort((a, b) => a.info.config.name < b.info.config.name ? -1 : 1);
}

/** Whether a KV bucket's message is a delete or purge marker (not a value). */
export function isMarker(m: DumpedMessage): boolean {
  return m.headers?.["KV-Operation"] !== undefined;
}

/**
 * Calls `fn` with each message of stream `name` up to its last sequence in `state` (as read
 * when the pass began), in sequence order; the number of messages.
 */
export async function eachMessage(
  ctx: NatsStoreContext,
  name: string,
  state: { messages: number; last_seq: number },
  fn: (m: DumpedMessage) => void | Promise<void>,
): Promise<number> {
  const last = state.last_seq;
  if (state.messages === 0) return 0;
  const consumer = await ctx.js.consumers.get(name);
  const messages = await consumer.consume({ max_messages: 256 });
  let seen = 0;
  let at = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  let quiet = false;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      quiet = true;
      void messages.close();
    }, IDLE_MS);
  };
  try {
    arm();
    for await (const m of messages) {
      arm();
      if (m.seq > last) break;
      invariant(m.seq > at, "a stream's messages come in sequence order");
      at = m.seq;
      const headers: Record<string, string[]> = {};
      for (const [k, v] of m.headers ?? []) headers[k] = v;
      await fn({
        seq: m.seq,
        subject: m.subject,
        data: m.data,
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
      });
      seen++;
      if (m.seq >= last || m.info.pending === 0) break;
    }
  } finally {
    clearTimeout(idle);
    await messages.close();
  }
  if (quiet) {
    // Nothing came: the messages left were deleted meanwhile, or the pass is stuck.
    const next = await ctx.jsm.streams.getMessage(name, nextBySubject(at + 1, ">"));
    if (next && next.seq <= last) {
      throw new Error(`Reading stream ${name} stalled at sequence ${at} of ${last}`);
    }
  }
  return seen;
}

/** The last value of every key of the bucket `<prefix>_<kind>` (no markers), in stream order. */
export async function bucketEntries(
  ctx: NatsStoreContext,
  kind: string,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const name = `KV_${ctx.prefix}_${kind}`;
  let info: StreamInfo;
  try {
    info = await ctx.jsm.streams.info(name);
  } catch {
    return out; // a bucket never made holds nothing
  }
  const head = `$KV.${ctx.prefix}_${kind}.`;
  await eachMessage(ctx, name, info.state, (m) => {
    const key = m.subject.slice(head.length);
    if (isMarker(m)) out.delete(key);
    else out.set(key, m.data);
  });
  return out;
}
