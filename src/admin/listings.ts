/**
 * The read-only commands: users, groups, stats. They read the KV file directly (never through
 * the store, which takes the data dir over), so they work beside a running server; each list
 * is read in pages, so a figure can be a moment older than the next one. On a cluster they
 * read the NATS store's buckets (src/store/nats/listings.ts), beside the live nodes.
 */

import type { PasswordHash } from "../crypto/password.ts";
import { allOf, type Kind, PREFIX } from "../store/kv_keys.ts";
import type { GroupRecord, UserRecord } from "../store/types.ts";
import type { NatsConnection } from "../cluster/connect.ts";
import type { NatsStoreContext } from "../store/nats/context.ts";
import { listGroups, listUsers, storeCounts } from "../store/nats/listings.ts";
import { LISTEN_MS, onlineNow, storeContext, withNats } from "./cluster.ts";
import type { AdminCommand, AdminContext } from "./command.ts";
import { openExistingKv, readIdentity, storeBytes } from "./data_dir.ts";
import { bytes, minute, plural, table, terminalJson } from "./text.ts";

const JSON_OPTION = { json: { type: "boolean" as const } };
const JSON_HELP = ["--json              One JSON document instead of a table"];

interface Tally {
  count: number;
  sum: number;
}

/** Entries of a kind, [kind, owner, …], counted per owner, with `weigh` summed over their values. */
async function tally(
  kv: Deno.Kv,
  kind: Kind,
  weigh: (value: unknown) => number = () => 0,
  keep: (value: unknown) => boolean = () => true,
): Promise<Map<unknown, Tally>> {
  const out = new Map<unknown, Tally>();
  for await (const e of kv.list({ prefix: allOf(kind) })) {
    if (!keep(e.value)) continue;
    const t = out.get(e.key[1]) ?? { count: 0, sum: 0 };
    t.count++;
    t.sum += weigh(e.value);
    out.set(e.key[1], t);
  }
  return out;
}

const inboxBytes = (v: unknown) => (v as { size: number }).size;
const unexpired = (now: number) => (v: unknown) => (v as Date).getTime() > now;

async function withKv<T>(ctx: AdminContext, fn: (kv: Deno.Kv) => Promise<T>): Promise<T> {
  const kv = await openExistingKv(ctx.dataDir);
  try {
    return await fn(kv);
  } finally {
    kv.close();
  }
}

export const USERS: AdminCommand = {
  name: "users",
  args: "",
  summary: "List the users: created, friends, groups, queued messages, devices",
  description:
    "Lists every account: when it was made, its friends and groups, the messages waiting for\n" +
    "it (and their size), its live resume tokens (one per device) and the scrypt cost of its\n" +
    "password hash (raised to the configured cost at its next login).",
  options: JSON_OPTION,
  optionHelp: JSON_HELP,
  arity: 0,
  run: async (ctx) => printUsers(ctx, ctx.cluster ? await clusterUsers(ctx) : await kvUsers(ctx)),
};

interface UserRow {
  name: string;
  created: string;
  friends: number;
  groups: number;
  queued: number;
  queuedBytes: number;
  tokens: number;
  scrypt: { N: number; r: number; p: number };
}

function kvUsers(ctx: AdminContext): Promise<UserRow[]> {
  return withKv(ctx, async (kv) => {
    const [friends, groups, inbox, tokens] = await Promise.all([
      tally(kv, PREFIX.friend),
      tally(kv, PREFIX.memberOf),
      tally(kv, PREFIX.inbox, inboxBytes),
      tally(kv, PREFIX.userToken, undefined, unexpired(Date.now())),
    ]);
    const users: UserRow[] = [];
    for await (const e of kv.list<UserRecord>({ prefix: allOf(PREFIX.user) })) {
      const user = e.key[1];
      const { N, r, p }: PasswordHash = e.value.password;
      users.push({
        name: e.value.name,
        created: e.value.created.toISOString(),
        friends: friends.get(user)?.count ?? 0,
        groups: groups.get(user)?.count ?? 0,
        queued: inbox.get(user)?.count ?? 0,
        queuedBytes: inbox.get(user)?.sum ?? 0,
        tokens: tokens.get(user)?.count ?? 0,
        scrypt: { N, r, p },
      });
    }
    return users;
  });
}

function clusterUsers(ctx: AdminContext): Promise<UserRow[]> {
  return withStoreContext(ctx, "users", async (store) =>
    (await listUsers(store)).map((u) => ({
      name: u.name,
      created: u.created.toISOString(),
      friends: u.friends,
      groups: u.groups,
      queued: u.queued,
      queuedBytes: u.queuedBytes,
      tokens: u.tokens,
      scrypt: u.scrypt,
    })));
}

function printUsers(ctx: AdminContext, users: UserRow[]): number {
  if (ctx.values.json) {
    console.log(terminalJson({ users }));
    return 0;
  }
  if (users.length === 0) {
    console.log("No users.");
    return 0;
  }
  const head = ["NAME", "CREATED (UTC)", "FRIENDS", "GROUPS", "QUEUED", "TOKENS", "SCRYPT N"];
  console.log(table([
    head,
    ...users.map((u) => [
      u.name,
      minute(new Date(u.created)),
      String(u.friends),
      String(u.groups),
      u.queued === 0 ? "0" : `${u.queued} (${bytes(u.queuedBytes)})`,
      String(u.tokens),
      String(u.scrypt.N),
    ]),
  ]));
  return 0;
}

export const GROUPS: AdminCommand = {
  name: "groups",
  args: "",
  summary: "List the groups and their members",
  description: "Lists every group: its id, name, creator, when it was made, and its members.",
  options: JSON_OPTION,
  optionHelp: JSON_HELP,
  arity: 0,
  run: async (ctx) =>
    printGroups(ctx, ctx.cluster ? await clusterGroups(ctx) : await kvGroups(ctx)),
};

interface GroupRow {
  id: number;
  name: string;
  creator: string;
  created: string;
  members: string[];
}

const byName = (a: string, b: string) => a.toLowerCase().localeCompare(b.toLowerCase());

function kvGroups(ctx: AdminContext): Promise<GroupRow[]> {
  return withKv(ctx, async (kv) => {
    const members = new Map<unknown, string[]>();
    for await (const e of kv.list<string>({ prefix: allOf(PREFIX.member) })) {
      const list = members.get(e.key[1]) ?? [];
      list.push(e.value);
      members.set(e.key[1], list);
    }
    const groups: GroupRow[] = [];
    for await (const e of kv.list<GroupRecord>({ prefix: allOf(PREFIX.group) })) {
      groups.push({
        id: e.value.id,
        name: e.value.name,
        creator: e.value.creator,
        created: e.value.created.toISOString(),
        members: (members.get(e.value.id) ?? []).sort(byName),
      });
    }
    return groups;
  });
}

function clusterGroups(ctx: AdminContext): Promise<GroupRow[]> {
  return withStoreContext(ctx, "groups", async (store) =>
    (await listGroups(store)).map((g) => ({
      id: g.id,
      name: g.name,
      creator: g.creator,
      created: g.created.toISOString(),
      members: g.members.map((m) => m.name).sort(byName),
    })));
}

function printGroups(ctx: AdminContext, groups: GroupRow[]): number {
  if (ctx.values.json) {
    console.log(terminalJson({ groups }));
    return 0;
  }
  if (groups.length === 0) {
    console.log("No groups.");
    return 0;
  }
  console.log(table([
    ["ID", "NAME", "CREATOR", "CREATED (UTC)", "MEMBERS"],
    ...groups.map((g) => [
      String(g.id),
      g.name,
      g.creator,
      minute(new Date(g.created)),
      `${g.members.length}: ${g.members.join(", ")}`,
    ]),
  ]));
  return 0;
}

async function count(kv: Deno.Kv, kind: Kind, keep = (_: unknown) => true): Promise<number> {
  let n = 0;
  for await (const e of kv.list({ prefix: allOf(kind) })) if (keep(e.value)) n++;
  return n;
}

export const STATS: AdminCommand = {
  name: "stats",
  args: "",
  summary: "Show counts and the store's size on disk",
  description:
    "Shows the users, groups and friendships, the messages waiting for delivery (with the\n" +
    "image data they hold), the world backlog, live resume tokens, the store's size on disk\n" +
    "(the KV file with its -wal and -shm files) and the identity key's fingerprint.\n" +
    "With --cluster: the same from the cluster's streams (their bytes, one replica's worth),\n" +
    `and the nodes and users online now (heard for ${LISTEN_MS / 1000} s, then asked).`,
  options: JSON_OPTION,
  optionHelp: JSON_HELP,
  arity: 0,
  run: (ctx) =>
    ctx.cluster ? clusterStats(ctx) : withKv(ctx, async (kv) => {
      const now = Date.now();
      const inbox = await tally(kv, PREFIX.inbox, inboxBytes);
      const blobs = await tally(kv, PREFIX.blob, (v) => (v as Uint8Array).length);
      const identity = await readIdentity(ctx.dataDir);
      const stats = {
        dataDir: ctx.dataDir,
        storeBytes: await storeBytes(ctx.dataDir),
        fingerprint: identity?.fingerprint ?? null,
        users: await count(kv, PREFIX.user),
        groups: await count(kv, PREFIX.group),
        friendships: (await count(kv, PREFIX.friend)) / 2,
        queuedMessages: [...inbox.values()].reduce((n, t) => n + t.count, 0),
        queuedBytes: [...inbox.values()].reduce((n, t) => n + t.sum, 0),
        usersWithQueue: inbox.size,
        imageBlobs: blobs.size,
        imageBlobBytes: [...blobs.values()].reduce((n, t) => n + t.sum, 0),
        worldBacklog: await count(kv, PREFIX.world),
        // One family per device: its current token (replaced ones are no longer live).
        resumeTokens: await count(kv, PREFIX.tokenFamily, (v) =>
          (v as { expires: Date }).expires > new Date(now)),
      };
      if (ctx.values.json) {
        console.log(terminalJson(stats));
        return 0;
      }
      console.log(table([
        ["data dir", stats.dataDir],
        ["store on disk", bytes(stats.storeBytes)],
        ["identity", stats.fingerprint ?? "none yet (made at the first start)"],
        // Images too big to sit inside a queued message are stored once for all recipients.
        ...recordRows(stats, ["large images", stats.imageBlobs, stats.imageBlobBytes]),
      ]));
      return 0;
    }),
};

/** The record counts of `stats`, a single server's or a cluster's, as table rows. */
function recordRows(
  s: {
    users: number;
    groups: number;
    friendships: number;
    queuedMessages: number;
    queuedBytes: number;
    usersWithQueue: number;
    worldBacklog: number;
    resumeTokens: number;
  },
  [blobName, blobs, blobBytes]: [string, number, number],
): [string, string][] {
  return [
    ["users", String(s.users)],
    ["groups", String(s.groups)],
    ["friendships", String(s.friendships)],
    [
      "queued messages",
      `${s.queuedMessages} (${bytes(s.queuedBytes)}) for ${plural(s.usersWithQueue, "user")}`,
    ],
    [blobName, `${blobs} (${bytes(blobBytes)})`],
    ["world backlog", `${s.worldBacklog} messages`],
    ["resume tokens", String(s.resumeTokens)],
  ];
}

function clusterStats(ctx: AdminContext): Promise<number> {
  return withStoreContext(ctx, "stats", async (store, nc) => {
    const [counts, online] = await Promise.all([
      storeCounts(store),
      onlineNow(nc, store.prefix),
    ]);
    const stats = {
      cluster: ctx.cluster!.nats,
      prefix: store.prefix,
      nodes: online.nodes,
      online: online.users,
      ...counts,
    };
    if (ctx.values.json) {
      console.log(terminalJson(stats));
      return 0;
    }
    console.log(table([
      ["cluster", `${stats.cluster.join(",")} prefix ${stats.prefix}`],
      [
        "nodes",
        `${stats.nodes} heard, ${plural(stats.online, "user")} online` +
        (online.silent > 0 ? ` (${online.silent} did not say who)` : ""),
      ],
      ["store", `${bytes(stats.storeBytes)} in ${plural(stats.streams, "stream")}`],
      ["identity", stats.fingerprint ?? "none yet (made when the first node starts)"],
      // Images and long texts stored once for all their recipients.
      ...recordRows(stats, ["shared content", stats.sharedBlobs, stats.sharedBlobBytes]),
    ]));
    return 0;
  });
}

/** Runs `fn` on the cluster's store context (read only: nothing is opened that writes). */
function withStoreContext<T>(
  ctx: AdminContext,
  command: string,
  fn: (store: NatsStoreContext, nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const cluster = ctx.cluster!;
  return withNats(cluster, command, async (nc) => fn(await storeContext(nc, ctx, cluster), nc));
}
