/**
 * Another store's data (a StoreImage, transfer.ts) written into an empty NATS store: how a
 * single server's data moves into a cluster (`parley admin restore --cluster` of a data dir's
 * backup). Nodes must not run on the prefix meanwhile: it must hold nothing when this starts.
 *
 * The buckets and streams are made as a node makes them (openNatsStore), then every record is
 * published once, in the layout each part's `imported…` function gives (users.ts, tokens.ts,
 * invites.ts, pairs.ts, groups.ts, invitations.ts, identity.ts), with many publishes in flight:
 * a compare-and-set per record, as a node's writes would be, is not needed in an empty prefix
 * that nothing else writes. What is kept as it was:
 * - the identity key, accounts with their password hashes, look-alike claims, token families
 *   (each token's hash, so clients resume with the tokens they hold), invite codes with their
 *   expiry, friendships, requests and blocks, groups with their ids and members, invitations;
 * - queued messages per user in their order (seqs are the new stream's: clients keep none past
 *   a session), content stored once for several recipients stored once again (its id kept);
 * - the world backlog in order (the stream keeps the target's `world.backlog` newest).
 * What is computed here, as a restore computes it (backup.ts): the per-user indexes (ties,
 * groups), the group counter (never below an id given), each inbox's counts, the bytes stored
 * per sender and each blob's references. Expired families and codes are left out; so is a
 * queued message whose shared content is incomplete in the source (it could not be delivered).
 */

import { userToken } from "../../cluster/names.ts";
import { invariant } from "../../invariant/invariant.ts";
import { senderOf } from "../inbox.ts";
import { usernameKey } from "../../protocol/names.ts";
import type { FamilyImage, GroupImage, RelationImage, StoreImage } from "../transfer.ts";
import type { Invitation } from "../types.ts";
import { CHUNK_BYTES } from "./blobs.ts";
import { encodeMessage, encodeRecord as encodeInboxRecord, type InboxRecord } from "./codec.ts";
import type { NatsStoreContext } from "./context.ts";
import { countOf, countsCodec } from "./counts.ts";
import { importedGroups } from "./groups.ts";
import { importedIdentity } from "./identity.ts";
import { importedInvitations } from "./invitations.ts";
import { importedInvite } from "./invites.ts";
import { encodeRecord } from "./kv_records.ts";
import { openNatsStore } from "./nats_store.ts";
import { importedPairs } from "./pairs.ts";
import { importedFamilies } from "./tokens.ts";
import { importedClaim, importedUser } from "./users.ts";

/** Publishes in flight at once (sent in order on one connection, so stored in order). */
const IN_FLIGHT = 256;

export interface ImportTally {
  users: number;
  /** Token families: one per device that can resume. */
  families: number;
  invites: number;
  friendships: number;
  requests: number;
  blocks: number;
  groups: number;
  invitations: number;
  queued: number;
  /** Content stored once for several queued messages. */
  blobs: number;
  world: number;
  /** Queued messages left out: their shared content was incomplete in the source. */
  broken: number;
}

/** Throws unless the prefix holds no stream or bucket: nothing is ever written over. */
export async function requireEmpty(ctx: NatsStoreContext): Promise<void> {
  const existing = await ctx.names();
  if (existing.length === 0) return;
  throw new Error(
    `The cluster already holds data under the prefix "${ctx.prefix}" (${existing.sort()[0]}` +
      `${existing.length > 1 ? ` and ${existing.length - 1} more` : ""}); restore only into ` +
      "a prefix that holds nothing",
  );
}

/** Publishes with up to IN_FLIGHT acknowledgements outstanding, each under an id of its own. */
class Publisher {
  readonly #run = crypto.randomUUID();
  readonly #inFlight: Promise<unknown>[] = [];
  #n = 0;

  constructor(private readonly ctx: NatsStoreContext) {}

  async publish(subject: string, data: Uint8Array): Promise<void> {
    // An id of this run's own: a publish the client sends again is stored once.
    this.#inFlight.push(
      this.ctx.js.publish(subject, data, { msgID: `import.${this.#run}.${this.#n++}` }),
    );
    if (this.#inFlight.length >= IN_FLIGHT) await this.flush();
  }

  /** A record of the bucket `<prefix>_<kind>`. */
  put(kind: string, key: string, data: Uint8Array): Promise<void> {
    return this.publish(`$KV.${this.ctx.prefix}_${kind}.${key}`, data);
  }

  async records(kind: string, records: Iterable<[string, unknown]>): Promise<void> {
    for (const [key, value] of records) await this.put(kind, key, encodeRecord(value));
  }

  async flush(): Promise<void> {
    await Promise.all(this.#inFlight.splice(0));
  }
}

const text = (n: number) => new TextEncoder().encode(String(n));

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function byUser<T>(items: Iterable<T>, userOf: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const user = userOf(item);
    let list = out.get(user);
    if (!list) out.set(user, list = []);
    list.push(item);
  }
  return out;
}

/**
 * Writes `image` into the empty prefix of `ctx`, with `identity` as the cluster's key (null:
 * the first node makes one). On failure, whatever was made under the prefix is deleted again.
 */
export async function importStore(
  ctx: NatsStoreContext,
  image: StoreImage,
  identity: Uint8Array | null,
): Promise<ImportTally> {
  await requireEmpty(ctx);
  try {
    // Every bucket and stream with a node's settings (the inbox's discard policy, the world's
    // backlog), made by the code that makes them for a node.
    const made = await openNatsStore(ctx.nc, {
      prefix: ctx.prefix,
      replicas: ctx.replicas,
      worldBacklog: ctx.worldBacklog,
      clock: ctx.clock,
    });
    await made.close();
    const out = new Publisher(ctx);
    if (identity) {
      await ctx.bucket("identity");
      const [key, value] = importedIdentity(identity);
      await out.put("identity", key, value);
    }
    const tally = await accounts(ctx, image, out);
    Object.assign(tally, await social(image, out));
    Object.assign(tally, await queues(ctx, image, out));
    for await (const m of image.world()) {
      await out.publish(ctx.subject("world"), encodeMessage(m));
      tally.world++;
    }
    await out.flush();
    return tally;
  } catch (e) {
    // What was made goes; a failure to list it must not hide why the import failed.
    const made = await ctx.names().catch(() => []);
    for (const name of made) await ctx.jsm.streams.delete(name).catch(() => {});
    throw e;
  }
}

/** Users, look-alike claims, token families and invite codes. */
async function accounts(
  ctx: NatsStoreContext,
  image: StoreImage,
  out: Publisher,
): Promise<ImportTally> {
  const now = ctx.clock.wall();
  const tally: ImportTally = {
    users: 0,
    families: 0,
    invites: 0,
    friendships: 0,
    requests: 0,
    blocks: 0,
    groups: 0,
    invitations: 0,
    queued: 0,
    blobs: 0,
    world: 0,
    broken: 0,
  };
  const users = new Set<string>();
  for await (const record of image.users()) {
    await out.records("users", [importedUser(record)]);
    users.add(usernameKey(record.name));
    tally.users++;
  }
  const held = (user: string) => users.has(user);
  for await (const { look, owner } of image.lookalikes()) {
    if (held(owner)) await out.records("users", [importedClaim(look, owner, now)]);
  }
  const live: FamilyImage[] = [];
  for await (const f of image.families()) {
    if (f.expires.getTime() > now && held(f.user)) live.push(f);
  }
  for (const [user, families] of byUser(live, (f) => f.user)) {
    await out.records("tokens", importedFamilies(user, families));
    tally.families += families.length;
  }
  for await (const invite of image.invites()) {
    if (invite.record.expires.getTime() <= now) continue;
    await out.records("invites", [importedInvite(invite)]);
    tally.invites++;
  }
  invariant(tally.users === users.size, "each account is imported once");
  return tally;
}

/** Friendships, requests and blocks; groups and their members; group invitations. */
async function social(
  image: StoreImage,
  out: Publisher,
): Promise<Pick<ImportTally, "friendships" | "requests" | "blocks" | "groups" | "invitations">> {
  const relations: RelationImage[] = await collect(image.relations());
  const distinct = (kind: RelationImage["kind"], ordered: boolean) => {
    const keys = relations.filter((r) => r.kind === kind && r.from.user !== r.to.user).map((r) =>
      ordered || r.from.user < r.to.user
        ? `${r.from.user}\n${r.to.user}`
        : `${r.to.user}\n${r.from.user}`
    );
    return new Set(keys).size;
  };
  await out.records("social", importedPairs(relations));
  const groups: GroupImage[] = await collect(image.groups());
  await out.records("groups", importedGroups(groups, await image.lastGroupId()));
  const invitations = byUser(await collect(image.invitations()), (i) => i.user);
  let invited = 0;
  for (const [user, list] of invitations) {
    const held: Invitation[] = list.map((i) => i.invitation);
    await out.records("social", [importedInvitations(user, held)]);
    invited += held.length;
  }
  return {
    friendships: distinct("friend", false),
    requests: distinct("request", true),
    blocks: distinct("block", true),
    groups: groups.length,
    invitations: invited,
  };
}

/** Queued messages, the content they share, and the counts derived from them. */
async function queues(
  ctx: NatsStoreContext,
  image: StoreImage,
  out: Publisher,
): Promise<Pick<ImportTally, "queued" | "blobs" | "broken">> {
  /** Blobs met so far: whether each was whole in the source (and so written here). */
  const blobs = new Map<string, boolean>();
  const counts = new Map<string, { sender: string; size: number }[]>();
  const stored = new Map<string, number>();
  const refs = new Map<string, number>();
  let queued = 0;
  let broken = 0;
  for await (const item of image.queued()) {
    if (item.blob) {
      let whole = blobs.get(item.blob.id);
      if (whole === undefined) {
        const content = await image.blob(item.blob);
        whole = content !== null;
        blobs.set(item.blob.id, whole);
        if (content) {
          const subject = ctx.subject("blob", item.blob.id);
          for (let at = 0; at === 0 || at < content.length; at += CHUNK_BYTES) {
            await out.publish(subject, content.slice(at, at + CHUNK_BYTES));
          }
        }
      }
      if (!whole) {
        broken++;
        continue;
      }
      refs.set(item.blob.id, (refs.get(item.blob.id) ?? 0) + 1);
    }
    const record: InboxRecord = { message: item.message, size: item.size, cost: item.cost };
    if (item.blob) record.blob = { ...item.blob };
    await out.publish(ctx.subject("inbox", userToken(item.user)), encodeInboxRecord(record));
    const sender = senderOf(item.message);
    let list = counts.get(item.user);
    if (!list) counts.set(item.user, list = []);
    list.push({ sender, size: item.size });
    stored.set(sender, (stored.get(sender) ?? 0) + item.cost);
    queued++;
  }
  // The derived buckets, keyed as the inbox keys them (inbox.ts, stored.ts, blobs.ts).
  for (const [user, items] of counts) {
    await out.put("inboxes", user, countsCodec.encode(countOf(items)));
  }
  for (const [sender, bytes] of stored) await out.put("stored", userToken(sender), text(bytes));
  for (const [blob, n] of refs) await out.put("blobrefs", blob, text(n));
  return { queued, blobs: refs.size, broken };
}
