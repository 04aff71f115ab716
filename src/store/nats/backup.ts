/**
 * A NATS store copied whole, for `parley admin backup|restore --cluster`: every stream and
 * bucket of a prefix with its config and every message (subject, headers, data), and back
 * into another (or the same, emptied) prefix.
 *
 * Dumping reads each stream once (dump.ts), the inbox before the blobs: a record in the dump
 * names a blob that was complete when the record was read, so a blob missing from the dump was
 * purged meanwhile, which happens only once every record naming it is deleted (delivered).
 *
 * Restoring makes each stream again with its config (renamed to the new prefix, with the
 * target's replicas) and publishes its messages in order. What that changes, and why it is
 * fine:
 * - Stream sequences start again from 1, without the gaps of deleted messages: inbox seqs and
 *   world seqs are renumbered in the same order. Clients never keep a seq past a session
 *   (ACKs name the session's own seqs; world catch-up goes by message id).
 * - KV revisions are new too: no compare-and-set survives a restore anyway (no node runs).
 * - Delete markers are not copied (a missing key and a deleted one read the same), nor the
 *   message ids and expected-sequence headers of the original writes (they would make the new
 *   writes fail or count as duplicates).
 * - The derived counts are computed from the restored inbox rather than copied, since a live
 *   cluster changes them between the reads of the inbox and of the buckets: `inboxes` (per
 *   user, messages and bytes per sender), `stored` (per sender, the records' costs) and
 *   `blobrefs` (per blob, the records naming it). Inbox records whose blob is not in the dump
 *   are dropped (delivered while the backup ran, see above); so are blobs no record names.
 */

import { userOfToken, userToken } from "../../cluster/names.ts";
import { headers as natsHeaders, type StreamConfig } from "../../cluster/nats.ts";
import { usernameKey } from "../../protocol/names.ts";
import { decodeRecord } from "./codec.ts";
import type { NatsStoreContext } from "./context.ts";
import { countOf, countsCodec } from "./counts.ts";
import { type DumpedMessage, eachMessage, isMarker, storeStreams } from "./dump.ts";
import { requireEmpty } from "./import.ts";

/** Publishes in flight at once while restoring (sent in order on one connection). */
const IN_FLIGHT = 256;
/** Buckets computed from the inbox on restore, not copied. */
const DERIVED = new Set(["inboxes", "stored", "blobrefs"]);

export interface DumpedStream {
  kind: string;
  kv: boolean;
  config: StreamConfig;
}

export type DumpItem = { stream: DumpedStream } | { message: DumpedMessage };

/** Streams in dump order: the inbox before the blobs (see above), then the rest by name. */
function rank(s: { kind: string; kv: boolean }): number {
  if (!s.kv && s.kind === "inbox") return 0;
  if (!s.kv && s.kind === "blob") return 1;
  return 2;
}

/** Every stream of `ctx.prefix` and its messages, to `out`, in order; the counts. */
export async function dumpStore(
  ctx: NatsStoreContext,
  out: (item: DumpItem) => Promise<void>,
): Promise<{ streams: number; messages: number }> {
  const streams = (await storeStreams(ctx)).sort((a, b) => rank(a) - rank(b));
  let messages = 0;
  for (const s of streams) {
    // Read again now: the state at the start of this stream's pass bounds it.
    const info = await ctx.jsm.streams.info(s.info.config.name);
    await out({ stream: { kind: s.kind, kv: s.kv, config: info.config } });
    messages += await eachMessage(ctx, info.config.name, info.state, (m) => out({ message: m }));
  }
  return { streams: streams.length, messages };
}

export interface RestoreTally {
  streams: number;
  /** Messages published (derived buckets' keys not included). */
  messages: number;
  users: number;
  groups: number;
  queued: number;
  /** Inbox records dropped: their blob was gone (delivered during the backup). */
  delivered: number;
}

/** Names and subjects of `from`'s store, in `to`'s. */
class Renamer {
  constructor(readonly from: string, readonly to: string) {}

  stream(s: DumpedStream): string {
    return s.kv ? `KV_${this.to}_${s.kind}` : `${this.to}_${s.kind}`;
  }

  subject(subject: string): string {
    const kv = `$KV.${this.from}_`;
    if (subject.startsWith(kv)) return `$KV.${this.to}_${subject.slice(kv.length)}`;
    if (subject.startsWith(`${this.from}.`)) return `${this.to}${subject.slice(this.from.length)}`;
    throw new Error(`The subject "${subject}" is not of the store "${this.from}"`);
  }
}

/** What the first pass learns: the streams, and the blobs to restore (whole, and named). */
interface Plan {
  streams: DumpedStream[];
  blobs: Set<string>;
}

async function plan(items: AsyncIterable<DumpItem>, from: string): Promise<Plan> {
  const streams: DumpedStream[] = [];
  const blobBytes = new Map<string, number>();
  const named: [string, number][] = [];
  const blobHead = `${from}.blob.`;
  const inboxHead = `${from}.inbox.`;
  let current: DumpedStream | null = null;
  for await (const item of items) {
    if ("stream" in item) {
      current = item.stream;
      if (streams.some((s) => s.kind === current!.kind && s.kv === current!.kv)) {
        throw new Error(`The backup holds the stream ${current.config.name} twice`);
      }
      streams.push(current);
      continue;
    }
    if (current === null) throw new Error("The backup has a message before any stream");
    const m = item.message;
    if (!current.kv && current.kind === "blob" && m.subject.startsWith(blobHead)) {
      const id = m.subject.slice(blobHead.length);
      blobBytes.set(id, (blobBytes.get(id) ?? 0) + m.data.length);
    } else if (!current.kv && current.kind === "inbox" && m.subject.startsWith(inboxHead)) {
      const blob = decodeRecord(m.data).blob;
      if (blob) named.push([blob.id, blob.bytes]);
    }
  }
  const blobs = new Set(
    named.filter(([id, bytes]) => blobBytes.get(id) === bytes).map(([id]) => id),
  );
  return { streams, blobs };
}

/** Headers worth copying: none of JetStream's own (ids, expectations) survive a restore. */
function copied(h: Record<string, string[]> | undefined) {
  if (!h) return undefined;
  const keys = Object.keys(h).filter((k) => !k.toLowerCase().startsWith("nats-"));
  if (keys.length === 0) return undefined;
  const out = natsHeaders();
  for (const k of keys) for (const v of h[k]) out.append(k, v);
  return out;
}

/**
 * Makes the store of the dump read by `items` (callable twice: a planning pass, then the
 * writing pass) under `ctx.prefix`, which must hold nothing. On failure, what was made is
 * deleted again.
 */
export async function restoreStore(
  ctx: NatsStoreContext,
  items: () => AsyncIterable<DumpItem>,
  from: string,
): Promise<RestoreTally> {
  await requireEmpty(ctx);
  const { streams, blobs } = await plan(items(), from);
  const names = new Renamer(from, ctx.prefix);
  try {
    for (const s of streams) {
      const config = {
        ...s.config,
        name: names.stream(s),
        subjects: (s.config.subjects ?? []).map((x) => names.subject(x)),
        num_replicas: ctx.replicas,
        sealed: false,
      };
      await ctx.jsm.streams.add(config);
    }
    return await load(ctx, items(), names, streams, blobs);
  } catch (e) {
    for (const name of await ctx.names()) await ctx.jsm.streams.delete(name).catch(() => {});
    throw e;
  }
}

async function load(
  ctx: NatsStoreContext,
  items: AsyncIterable<DumpItem>,
  names: Renamer,
  streams: DumpedStream[],
  blobs: Set<string>,
): Promise<RestoreTally> {
  const tally: RestoreTally = {
    streams: streams.length,
    messages: 0,
    users: 0,
    groups: 0,
    queued: 0,
    delivered: 0,
  };
  const run = crypto.randomUUID();
  const inFlight: Promise<unknown>[] = [];
  const publish = async (subject: string, data: Uint8Array, h?: ReturnType<typeof copied>) => {
    // A message id of this run's own: a publish the client retries is stored once.
    inFlight.push(
      ctx.js.publish(subject, data, { msgID: `restore.${run}.${tally.messages}`, headers: h }),
    );
    tally.messages++;
    if (inFlight.length >= IN_FLIGHT) await Promise.all(inFlight.splice(0));
  };
  const inboxHead = `${names.from}.inbox.`;
  const blobHead = `${names.from}.blob.`;
  const counts = new Map<string, { sender: string; size: number }[]>();
  const stored = new Map<string, number>();
  const refs = new Map<string, number>();
  const derivedConfig = new Map<string, DumpedStream>();
  let current: DumpedStream | null = null;
  for await (const item of items) {
    if ("stream" in item) {
      current = item.stream;
      if (current.kv && DERIVED.has(current.kind)) derivedConfig.set(current.kind, current);
      continue;
    }
    // The planning pass saw a stream before each message.
    if (current === null) throw new Error("The backup has a message before any stream");
    const stream: DumpedStream = current;
    const m = item.message;
    if (stream.kv) {
      if (isMarker(m) || DERIVED.has(stream.kind)) continue;
      const key = m.subject.slice(`$KV.${names.from}_${stream.kind}.`.length);
      if (stream.kind === "users" && key.startsWith("user.")) tally.users++;
      if (stream.kind === "groups" && key.startsWith("group.")) tally.groups++;
    } else if (stream.kind === "inbox" && m.subject.startsWith(inboxHead)) {
      const record = decodeRecord(m.data);
      if (record.blob && !blobs.has(record.blob.id)) {
        tally.delivered++;
        continue;
      }
      const user = userOfToken(m.subject.slice(inboxHead.length));
      const sender = usernameKey(record.message.from);
      let list = counts.get(user);
      if (!list) counts.set(user, list = []);
      list.push({ sender, size: record.size });
      stored.set(sender, (stored.get(sender) ?? 0) + record.cost);
      if (record.blob) refs.set(record.blob.id, (refs.get(record.blob.id) ?? 0) + 1);
      tally.queued++;
    } else if (stream.kind === "blob" && m.subject.startsWith(blobHead)) {
      if (!blobs.has(m.subject.slice(blobHead.length))) continue; // named by no record kept
    }
    await publish(names.subject(m.subject), m.data, copied(m.headers));
  }
  // The derived buckets, from what was restored.
  const put = async (kind: string, key: string, value: Uint8Array) => {
    if (!derivedConfig.has(kind)) {
      derivedConfig.set(kind, { kind, kv: true, config: {} as StreamConfig });
      await ctx.bucket(kind);
    }
    await publish(`$KV.${ctx.prefix}_${kind}.${key}`, value);
  };
  const text = (n: number) => new TextEncoder().encode(String(n));
  for (const [user, items] of counts) {
    await put("inboxes", user, countsCodec.encode(countOf(items)));
  }
  for (const [sender, bytes] of stored) await put("stored", userToken(sender), text(bytes));
  for (const [blob, n] of refs) await put("blobrefs", blob, text(n));
  await Promise.all(inFlight.splice(0));
  return tally;
}
