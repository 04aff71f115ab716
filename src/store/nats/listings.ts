/**
 * Read-only views of a NATS store for `parley admin --cluster users|groups|stats`: each bucket
 * is read whole in one pass (dump.ts) from the truths the store keeps (users, pairs, groups,
 * inbox counts, token families), never from its per-user indexes. Nothing is written: these
 * run beside the live nodes. Each bucket is read at its own moment, so one figure can be a
 * moment older than the next.
 */

import { userOfToken } from "../../cluster/names.ts";
import { ed25519KeyPair, fingerprint } from "../../crypto/keys.ts";
import type { PasswordHash } from "../../crypto/password.ts";
import { parseIdentity } from "../identity.ts";
import type { GroupRecord, NamedUser, UserRecord } from "../types.ts";
import type { NatsStoreContext } from "./context.ts";
import { countsCodec } from "./counts.ts";
import { bucketEntries, storeStreams } from "./dump.ts";
import { decodeRecord } from "./kv_records.ts";
import type { Pair } from "./pairs.ts";

export interface UserListing {
  user: string;
  name: string;
  created: Date;
  friends: number;
  groups: number;
  queued: number;
  queuedBytes: number;
  /** Live token families: one per device. */
  tokens: number;
  scrypt: Pick<PasswordHash, "N" | "r" | "p">;
}

export interface GroupListing extends GroupRecord {
  members: NamedUser[];
}

export interface StoreCounts {
  users: number;
  groups: number;
  friendships: number;
  queuedMessages: number;
  queuedBytes: number;
  usersWithQueue: number;
  /** Content stored once for several records (images, long texts). */
  sharedBlobs: number;
  sharedBlobBytes: number;
  worldBacklog: number;
  resumeTokens: number;
  /** Streams and buckets of the prefix, and the bytes they hold (one replica's worth). */
  streams: number;
  storeBytes: number;
  fingerprint: string | null;
}

interface Family {
  user: string;
  expires: Date;
}

/** Whether the prefix holds a Parley store (its users bucket). */
export async function storeExists(ctx: NatsStoreContext): Promise<boolean> {
  return (await storeStreams(ctx)).some((s) => s.kv && s.kind === "users");
}

function tallyBy<K>(keys: Iterable<K>): Map<K, number> {
  const out = new Map<K, number>();
  for (const k of keys) out.set(k, (out.get(k) ?? 0) + 1);
  return out;
}

/** `user.<token>` entries of the users bucket, by identity. */
async function users(ctx: NatsStoreContext): Promise<Map<string, UserRecord>> {
  const out = new Map<string, UserRecord>();
  for (const [key, data] of await bucketEntries(ctx, "users")) {
    if (!key.startsWith("user.")) continue;
    out.set(userOfToken(key.slice("user.".length)), decodeRecord<UserRecord>(data));
  }
  return out;
}

/** Friend pairs as [identity, identity], from the pair keys (the truth). */
async function friendPairs(ctx: NatsStoreContext): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const [key, data] of await bucketEntries(ctx, "social")) {
    const parts = key.split(".");
    if (parts[0] !== "pair" || parts.length !== 3) continue;
    if (decodeRecord<Pair>(data).friends) out.push([userOfToken(parts[1]), userOfToken(parts[2])]);
  }
  return out;
}

export async function listGroups(ctx: NatsStoreContext): Promise<GroupListing[]> {
  const out: GroupListing[] = [];
  for (const [key, data] of await bucketEntries(ctx, "groups")) {
    if (key.startsWith("group.")) out.push(decodeRecord<GroupListing>(data));
  }
  return out.sort((a, b) => a.id - b.id);
}

/** Each inbox's counts, by identity. */
async function inboxCounts(ctx: NatsStoreContext): Promise<Map<string, { n: number; b: number }>> {
  const out = new Map<string, { n: number; b: number }>();
  for (const [key, data] of await bucketEntries(ctx, "inboxes")) {
    const { n, b } = countsCodec.decode(data);
    if (n > 0) out.set(key, { n, b });
  }
  return out;
}

/** The live token families (one per device), each its user's. */
async function liveFamilies(ctx: NatsStoreContext, now: number): Promise<Family[]> {
  const out: Family[] = [];
  for (const [key, data] of await bucketEntries(ctx, "tokens")) {
    if (!key.startsWith("fam.")) continue;
    const f = decodeRecord<Family>(data);
    if (f.expires.getTime() > now) out.push(f);
  }
  return out;
}

export async function listUsers(ctx: NatsStoreContext): Promise<UserListing[]> {
  const now = ctx.clock.wall();
  const [records, pairs, groups, inbox, families] = await Promise.all([
    users(ctx),
    friendPairs(ctx),
    listGroups(ctx),
    inboxCounts(ctx),
    liveFamilies(ctx, now),
  ]);
  const friends = tallyBy(pairs.flat());
  const memberships = tallyBy(groups.flatMap((g) => g.members.map((m) => m.user)));
  const tokens = tallyBy(families.map((f) => f.user));
  return [...records].map(([user, r]) => {
    const { N, r: rr, p } = r.password;
    return {
      user,
      name: r.name,
      created: r.created,
      friends: friends.get(user) ?? 0,
      groups: memberships.get(user) ?? 0,
      queued: inbox.get(user)?.n ?? 0,
      queuedBytes: inbox.get(user)?.b ?? 0,
      tokens: tokens.get(user) ?? 0,
      scrypt: { N, r: rr, p },
    };
  }).sort((a, b) => a.user < b.user ? -1 : a.user > b.user ? 1 : 0);
}

export async function storeCounts(ctx: NatsStoreContext): Promise<StoreCounts> {
  const now = ctx.clock.wall();
  const [streams, records, pairs, groups, inbox, families, refs, identity] = await Promise.all([
    storeStreams(ctx),
    users(ctx),
    friendPairs(ctx),
    listGroups(ctx),
    inboxCounts(ctx),
    liveFamilies(ctx, now),
    bucketEntries(ctx, "blobrefs"),
    bucketEntries(ctx, "identity"),
  ]);
  const state = (kv: boolean, kind: string) =>
    streams.find((s) => s.kv === kv && s.kind === kind)?.info.state;
  return {
    users: records.size,
    groups: groups.length,
    friendships: pairs.length,
    queuedMessages: [...inbox.values()].reduce((n, c) => n + c.n, 0),
    queuedBytes: [...inbox.values()].reduce((n, c) => n + c.b, 0),
    usersWithQueue: inbox.size,
    sharedBlobs: refs.size,
    sharedBlobBytes: state(false, "blob")?.bytes ?? 0,
    worldBacklog: state(false, "world")?.messages ?? 0,
    resumeTokens: families.length,
    streams: streams.length,
    storeBytes: streams.reduce((n, s) => n + s.info.state.bytes, 0),
    fingerprint: fingerprintOf(identity.get("seed")),
  };
}

/** The cluster's identity key's fingerprint, as clients show it; null while it has none. */
export async function clusterFingerprint(ctx: NatsStoreContext): Promise<string | null> {
  return fingerprintOf((await bucketEntries(ctx, "identity")).get("seed"));
}

function fingerprintOf(seed: Uint8Array | undefined): string | null {
  const key = seed ? parseIdentity(new TextDecoder().decode(seed)) : null;
  return key ? fingerprint(ed25519KeyPair(key).publicKey) : null;
}
