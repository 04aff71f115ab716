/**
 * The KV key layout: every key Parley keeps in Deno KV is named and built here, and only here,
 * so that the store and `parley admin` (backup, restore, listings) agree on it. Changing a key
 * changes the layout of existing data files: that takes a new schema version and a migration
 * (schema.ts). A user is named by usernameKey() (lowercase) in keys.
 *
 *   key                                  value                                    kept by
 *   ["meta", "schema"]                   number: the layout's version             schema.ts
 *   ["meta", "lookalike_index"]          1, once older users got look-alike keys  users.ts
 *   ["health"]                           never written: read by the health check  kv_store.ts
 *   ["user", user]                       UserRecord                               users.ts
 *   ["user_look", look-alike key]        user holding that look                   users.ts
 *   ["token_family", family]             FamilyEntry (expires)                    tokens.ts
 *   ["token", hash hex]                  TokenRecord (expires)                    tokens.ts
 *   ["user_token", user, family]         Date: the family's end (expires)         tokens.ts
 *   ["invite", hash hex]                 InviteRecord (expires)                   invites.ts
 *   ["friend", user, other]              other's display name, both ways          friends.ts
 *   ["friend_req", to, from]             from's display name                      friends.ts
 *   ["friend_req_out", from, to]         to's display name                        friends.ts
 *   ["group_seq"]                        number: the last group id given          groups.ts
 *   ["group", id]                        GroupRecord                              groups.ts
 *   ["group_pending", id]                Date: a large group still being written  groups.ts
 *   ["member", id, user]                 member's display name                    groups.ts
 *   ["member_of", user, id]              true                                     groups.ts
 *   ["g_invite", invitee, group id]      a group invitation                       invitations.ts
 *   ["block", blocker, blocked]          blocked's display name                   blocks.ts
 *   ["blocked_by", blocked, blocker]     true                                     blocks.ts
 *   ["world", seq]                       ChatMessage: the world room's backlog    world.ts
 *   ["inbox", user, seq]                 a queued item, delivered in seq order    inbox.ts
 *   ["blob", blob id, i]                 chunk i of content stored once           inbox.ts
 *   ["blob_ref", blob id, user, seq]     true: the queued item that uses it       inbox.ts
 *   ["blob_pending", blob id]            Date: a blob being written               inbox.ts
 *   ["blob_pending", blob id, user, seq] Date: a reference being removed          inbox.ts
 *
 * "(expires)": written with KV's expireIn, so it disappears by itself; backups keep the time.
 * Users, families and hashes are strings, ids and seqs numbers: KV orders numbers by value, so
 * ["inbox", user] lists in seq order.
 */

/** The first part of every key: the kind of record. */
export const PREFIX = {
  meta: "meta",
  health: "health",
  user: "user",
  userLook: "user_look",
  tokenFamily: "token_family",
  token: "token",
  userToken: "user_token",
  invite: "invite",
  friend: "friend",
  friendRequest: "friend_req",
  friendRequestOut: "friend_req_out",
  groupSeq: "group_seq",
  group: "group",
  groupPending: "group_pending",
  member: "member",
  memberOf: "member_of",
  groupInvitation: "g_invite",
  block: "block",
  blockedBy: "blocked_by",
  world: "world",
  inbox: "inbox",
  blob: "blob",
  blobRef: "blob_ref",
  blobPending: "blob_pending",
} as const;

const P = PREFIX;

/** A kind of record: the first part of its keys. */
export type Kind = typeof PREFIX[keyof typeof PREFIX];

/** The prefix of every key of one kind: for sweeps, listings and counts. */
export function allOf(kind: Kind): Deno.KvKey {
  return [kind];
}

// Metadata

export const SCHEMA_KEY: Deno.KvKey = Object.freeze([P.meta, "schema"]);
export const isSchemaKey = (key: Deno.KvKey): boolean =>
  key.length === 2 && key[0] === SCHEMA_KEY[0] && key[1] === SCHEMA_KEY[1];
export const LOOKALIKE_INDEXED_KEY: Deno.KvKey = Object.freeze([P.meta, "lookalike_index"]);
export const HEALTH_KEY: Deno.KvKey = Object.freeze([P.health]);

// Users

export const userKey = (user: string): Deno.KvKey => [P.user, user];
export const userLookKey = (look: string): Deno.KvKey => [P.userLook, look];

// Resume tokens

export const tokenFamilyKey = (family: string): Deno.KvKey => [P.tokenFamily, family];
export const tokenKey = (hash: string): Deno.KvKey => [P.token, hash];
export const userTokenKey = (user: string, family: string): Deno.KvKey => [
  P.userToken,
  user,
  family,
];
export const userTokensPrefix = (user: string): Deno.KvKey => [P.userToken, user];

// Invite codes

export const inviteKey = (hash: string): Deno.KvKey => [P.invite, hash];

// Friends and friend requests

export const friendKey = (user: string, other: string): Deno.KvKey => [P.friend, user, other];
export const friendsPrefix = (user: string): Deno.KvKey => [P.friend, user];
export const friendRequestKey = (to: string, from: string): Deno.KvKey => [
  P.friendRequest,
  to,
  from,
];
export const friendRequestsPrefix = (to: string): Deno.KvKey => [P.friendRequest, to];
export const friendRequestOutKey = (from: string, to: string): Deno.KvKey => [
  P.friendRequestOut,
  from,
  to,
];
export const friendRequestsOutPrefix = (from: string): Deno.KvKey => [P.friendRequestOut, from];

// Groups

export const GROUP_SEQ_KEY: Deno.KvKey = Object.freeze([P.groupSeq]);
export const groupKey = (id: number): Deno.KvKey => [P.group, id];
export const groupPendingKey = (id: number): Deno.KvKey => [P.groupPending, id];
export const memberKey = (id: number, user: string): Deno.KvKey => [P.member, id, user];
export const membersPrefix = (id: number): Deno.KvKey => [P.member, id];
export const memberOfKey = (user: string, id: number): Deno.KvKey => [P.memberOf, user, id];
export const memberOfPrefix = (user: string): Deno.KvKey => [P.memberOf, user];
export const groupInvitationKey = (invitee: string, group: number): Deno.KvKey => [
  P.groupInvitation,
  invitee,
  group,
];
export const groupInvitationsPrefix = (invitee: string): Deno.KvKey => [
  P.groupInvitation,
  invitee,
];

// Blocks

export const blockKey = (blocker: string, blocked: string): Deno.KvKey => [
  P.block,
  blocker,
  blocked,
];
export const blocksPrefix = (blocker: string): Deno.KvKey => [P.block, blocker];
export const blockedByKey = (blocked: string, blocker: string): Deno.KvKey => [
  P.blockedBy,
  blocked,
  blocker,
];
export const blockedByPrefix = (blocked: string): Deno.KvKey => [P.blockedBy, blocked];

// The world room

export const worldKey = (seq: number): Deno.KvKey => [P.world, seq];

// Inboxes and the content stored once for many of them

export const inboxKey = (user: string, seq: number): Deno.KvKey => [P.inbox, user, seq];
export const inboxPrefix = (user: string): Deno.KvKey => [P.inbox, user];
export const blobChunkKey = (blob: string, i: number): Deno.KvKey => [P.blob, blob, i];
export const blobChunksPrefix = (blob: string): Deno.KvKey => [P.blob, blob];
export const blobRefKey = (blob: string, user: string, seq: number): Deno.KvKey => [
  P.blobRef,
  blob,
  user,
  seq,
];
export const blobRefsPrefix = (blob: string): Deno.KvKey => [P.blobRef, blob];
export const blobPendingKey = (blob: string): Deno.KvKey => [P.blobPending, blob];
export const blobPendingRefKey = (blob: string, user: string, seq: number): Deno.KvKey => [
  P.blobPending,
  blob,
  user,
  seq,
];
