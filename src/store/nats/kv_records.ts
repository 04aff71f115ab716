/**
 * JSON records in a JetStream KV bucket, read and changed by compare-and-set: the one way the
 * NATS store's accounts and social parts write, since several Parley nodes share each bucket.
 *
 * A key's revision is the stream sequence of its last message; a deleted key keeps a delete
 * marker, whose revision a write must name like any other (0 only for a key never written).
 * Dates and byte arrays survive the round trip (tagged in the JSON).
 *
 * Why not `kv.update(key, value, revision)`: nats-server before 2.9.21 (Debian ships 2.9.10)
 * checks a clustered stream's expected last subject sequence only BEFORE proposing the write
 * to its replicas (nats-io/nats-server#4320), so several writers naming the same revision at
 * the same moment all succeed (measured: 10 of 10 on the test cluster). An expected sequence of
 * 0 (create) and a message id are checked when the write is applied, in order. So each write
 * also carries the message id `<key>@<revision>`: of the writers that passed the pre-check with
 * one revision, the stream stores the first and reports the rest as duplicates (JetStream's
 * duplicate window, 2 minutes by default, is far longer than a write is in flight). A writer
 * with an older revision fails the pre-check, since the stream has applied a later one.
 */

import {
  headers,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type KV,
} from "../../cluster/nats.ts";
import { invariant } from "../../invariant/invariant.ts";
import type { NatsStoreContext } from "./context.ts";

/** A key as read: its value (null when absent or deleted) and the revision to write against. */
export interface Versioned<T> {
  value: T | null;
  revision: number;
}

/**
 * Attempts of one compare-and-set loop before it gives up: each failure means another writer
 * got there first, so a loop this long means a key far hotter than any Parley writes.
 */
export const MAX_ATTEMPTS = 1_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeRecord(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value, function (this: unknown, key, v) {
    // `this[key]` is the value before toJSON: a Date arrives here already a string.
    const raw = (this as Record<string, unknown>)[key];
    if (raw instanceof Date) return { $date: raw.getTime() };
    if (raw instanceof Uint8Array) return { $bytes: raw.toBase64() };
    return v;
  }));
}

export function decodeRecord<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes), (_key, v) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      if (typeof v.$date === "number") return new Date(v.$date);
      if (typeof v.$bytes === "string") return Uint8Array.fromBase64(v.$bytes);
    }
    return v;
  }) as T;
}

/** True when a write failed only because the key moved past the revision it named. */
export function isConflict(e: unknown): boolean {
  return e instanceof JetStreamApiError &&
    (e.code === JetStreamApiCodes.StreamWrongLastSequence ||
      e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

/** The bucket `<prefix>_<kind>` of the store, made on first use, as records. */
export async function openRecords(ctx: NatsStoreContext, kind: string): Promise<RecordBucket> {
  return { kv: await ctx.bucket(kind), js: ctx.js, name: `${ctx.prefix}_${kind}` };
}

/** A KV bucket and what a compare-and-set write needs besides (see above). */
export interface RecordBucket {
  readonly kv: KV;
  readonly js: JetStreamClient;
  /** The bucket's name (`<prefix>_<kind>`). */
  readonly name: string;
}

export async function read<T>(bucket: RecordBucket, key: string): Promise<Versioned<T>> {
  const e = await bucket.kv.get(key);
  if (e === null) return { value: null, revision: 0 };
  if (e.operation !== "PUT") return { value: null, revision: e.revision };
  return { value: decodeRecord<T>(e.value), revision: e.revision };
}

/**
 * Writes `value` (null: deletes) if the key is still at `revision`; false when another writer
 * moved it first. Resolves once JetStream acknowledged the write (a quorum of replicas has it).
 */
export async function writeIf<T>(
  bucket: RecordBucket,
  key: string,
  value: T | null,
  revision: number,
): Promise<boolean> {
  // An absent key has nothing to delete; a delete with expected sequence 0 would write a marker.
  if (value === null && revision === 0) return true;
  const bytes = value === null ? null : encodeRecord(value);
  return await writeBytesIf(bucket, key, bytes, revision) !== null;
}

/**
 * Writes `bytes` (null: a delete marker) if the key is still at `revision`; its new revision,
 * or null when another writer moved it first. The compare-and-set every NATS store part uses.
 */
export async function writeBytesIf(
  bucket: RecordBucket,
  key: string,
  bytes: Uint8Array | null,
  revision: number,
): Promise<number | null> {
  const h = headers();
  if (bytes === null) h.set("KV-Operation", "DEL");
  try {
    const ack = await bucket.js.publish(
      `$KV.${bucket.name}.${key}`,
      bytes ?? new Uint8Array(0),
      { headers: h, msgID: `${key}@${revision}`, expect: { lastSubjectSequence: revision } },
    );
    return ack.duplicate ? null : ack.seq;
  } catch (e) {
    if (isConflict(e)) return null;
    throw e;
  }
}

/**
 * Deletes a key whatever its revision: only for keys that are created once and never changed
 * (a token's entry), where no compare-and-set can be under way.
 */
export async function drop(bucket: RecordBucket, key: string): Promise<void> {
  await bucket.kv.delete(key);
}

/** What one step of `change` decided: the value to write (undefined: write nothing), and the answer. */
export interface Step<T, R> {
  next?: T | null;
  result: R;
}

/**
 * Read-modify-write of one key by compare-and-set, again from a fresh read whenever another
 * writer got in between. `step` must be pure: it may run several times.
 */
export async function change<T, R>(
  kv: RecordBucket,
  key: string,
  step: (current: T | null) => Step<T, R>,
): Promise<R> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await read<T>(kv, key);
    const { next, result } = step(current.value);
    if (next === undefined) return result;
    if (next === null && current.value === null) return result;
    if (await writeIf(kv, key, next, current.revision)) return result;
  }
  throw tooHot(key);
}

/** The end of a compare-and-set loop that never got its write in: a bug, or a key far too hot. */
export function tooHot(key: string): Error {
  invariant(false, "a KV compare-and-set loop ends");
  return new Error(`Key "${key}" kept changing under ${MAX_ATTEMPTS} attempts to write it`);
}
