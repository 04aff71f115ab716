/**
 * The store seam: handlers see only these interfaces, and what they take and return is plain
 * data. Today Deno KV implements them (kv_store.ts); a remote store can replace it without
 * touching the handlers. How an implementation batches, defers or cancels its writes stays
 * inside it.
 *
 * One primitive crosses the seam besides data: `Completion` (completion.ts), the end of some
 * store work told to listeners, which `enqueue` hands back so that SENT can wait for durability
 * without a promise per message. It depends on nothing and any store can make one.
 */

import type { PasswordHash } from "../crypto/password.ts";
import type { Completion } from "./completion.ts";

export type { Completion, CompletionListener } from "./completion.ts";

export interface UserRecord {
  /** The name as registered (display form); its lowercase is the identity. */
  name: string;
  password: PasswordHash;
  created: Date;
  /**
   * Names the password, not its hash (password_stamp.ts): create() and setPassword() (a new
   * password) give a new one, rehash() (the same password, hashed at a higher cost) keeps it.
   * A cluster node's session holds it to tell a new password from a rehash. Absent in records
   * written before it existed (until their password changes): absent is a stamp too.
   */
  passwordStamp?: string;
}

export interface UserStore {
  /**
   * Adds a user; false when the name is taken, whatever its case, or a name that looks like it
   * (the same usernameLookalikeKey).
   */
  create(record: UserRecord): Promise<boolean>;
  /** The registered spelling of the account whose name looks like `name`, if any. */
  lookalike(name: string): Promise<string | null>;
  /** Looks a user up by name, whatever its case; without a promise when it is in memory. */
  get(name: string): UserRecord | null | Promise<UserRecord | null>;
  /**
   * Replaces a user's password (a new one): its new passwordStamp, or null when the user does
   * not exist.
   */
  setPassword(name: string, password: PasswordHash): Promise<string | null>;
  /**
   * Replaces the hash of the same password with a stronger one, keeping its passwordStamp, if
   * the user's hash is still `from` (the hash the password was verified against): false, with
   * nothing written, when the user does not exist or its password changed meanwhile.
   */
  rehash(name: string, from: PasswordHash, to: PasswordHash): Promise<boolean>;
  /** Deletes the user's record (the account's other data goes through the other stores). */
  remove(name: string): Promise<boolean>;
}

/**
 * A token family: one device's lineage of resume tokens, started by a password login and
 * continued by each RESUME, which rotates it (the new token replaces the one presented).
 */
export interface TokenFamily {
  /** The user's identity (lowercase name). */
  user: string;
  /** Random, or derived from the user and the client's device id (one family per device). */
  id: string;
  /** The device id given at LOGIN, if any (a new password keeps the device's one family). */
  device: Uint8Array | null;
  /** Whether RESUME rotates the token (clients of protocol version 1 keep theirs). */
  rotates: boolean;
  created: Date;
  /** The family's end; rotation does not extend it. */
  expires: Date;
}

/** A token's entry: which family it belongs to (valid or not is the family's to say). */
export interface TokenRecord {
  user: string;
  family: string;
  /** The family's end, so that the entry goes with it. */
  expires: Date;
}

export interface IssuedToken {
  /** The secret the client keeps; the store keeps only its SHA-256. */
  token: Uint8Array;
  expires: Date;
  family: string;
}

/** What a RESUME's token turned out to be. */
export type ResumeOutcome =
  /** Valid: `token` is the one to hand back (the rotated one, or the same when it does not rotate). */
  | { kind: "ok"; family: TokenFamily; token: Uint8Array; epoch: number }
  /** A token the family had already replaced: the whole family is now revoked. */
  | { kind: "reused"; family: TokenFamily }
  /** Unknown, revoked or expired. */
  | { kind: "unknown" };

export interface TokenStore {
  /**
   * Starts a token family for `user`, dropping the user's oldest families beyond `maxPerUser`.
   * With a `device`, the device's earlier family of this user is revoked first.
   */
  issue(
    user: string,
    ttlMs: number,
    maxPerUser: number,
    opts?: { device?: Uint8Array | null; rotates?: boolean },
  ): Promise<IssuedToken>;
  /**
   * RESUME: the current token of a family is valid (and rotated if the family rotates); the
   * one it replaced stays valid for `graceMs` after that replacement, in case the client never
   * got its successor; any older token of the family revokes the family.
   */
  resume(token: Uint8Array, graceMs: number): Promise<ResumeOutcome>;
  /** The family of a token, without using it (tests, tools). */
  familyOf(token: Uint8Array): Promise<TokenFamily | null>;
  revokeFamily(user: string, family: string): Promise<void>;
  revokeAll(user: string): Promise<void>;
  /**
   * Counts revokeAll calls for the user in this process (a new password, a LOGOUT everywhere),
   * bumped once each has committed: a RESUME whose check began at another epoch may have read a
   * token revoked meanwhile. Revoking one family does not count: its RESUMEs are serialised
   * with it, and other devices' RESUMEs must not fail because of it.
   */
  epoch(user: string): number;
}

export interface InviteRecord {
  created: Date;
  expires: Date;
}

/** One-time invite codes for registration; only their hashes are stored. */
export interface InviteStore {
  add(code: string, ttlMs: number): Promise<InviteRecord>;
  /** True when the code exists and has not expired (a cheap check before the hash). */
  valid(code: string): Promise<boolean>;
  /** Uses the code up; null when it is unknown, used or expired. */
  take(code: string): Promise<InviteRecord | null>;
  /** Puts back a code taken by a registration that then failed. */
  giveBack(code: string, record: InviteRecord): Promise<void>;
}

export interface Store {
  users: UserStore;
  tokens: TokenStore;
  invites: InviteStore;
  friends: FriendStore;
  groups: GroupStore;
  blocks: BlockStore;
  invitations: InvitationStore;
  inbox: InboxStore;
  world: WorldStore;
  /** A cheap read that fails when the store does not answer (health checks). */
  ping(): Promise<void>;
  /**
   * Whether `e`, thrown by this store, means it could not be reached for now (a retry in a few
   * seconds may work) rather than a fault. Absent: no error of the store's is of that kind.
   */
  unavailable?(e: unknown): boolean;
  /** Commits pending writes and closes. */
  close(): Promise<void>;
}

/** A friend or member as lists show them. */
export interface NamedUser {
  /** Identity (lowercase). */
  user: string;
  /** Display form. */
  name: string;
}

export interface FriendStore {
  /** Makes a and b friends both ways; false if they already were. */
  add(a: NamedUser, b: NamedUser): Promise<boolean>;
  /** Ends the friendship both ways; false if there was none. */
  remove(a: string, b: string): Promise<boolean>;
  list(user: string): Promise<NamedUser[]>;
  count(user: string): Promise<number>;
  /**
   * Records that `from` asked `to` to be friends; false if that request was already waiting.
   * Refused ("full") when `to` has `max` requests waiting or `from` has `max` out.
   */
  request(from: NamedUser, to: NamedUser, max: number): Promise<"requested" | "waiting" | "full">;
  /** Ends a waiting request of `from` to `to`; false if there was none. */
  dropRequest(from: string, to: string): Promise<boolean>;
  /** Whether `from` has asked `to` to be friends and is still waiting. */
  hasRequest(from: string, to: string): Promise<boolean>;
  /**
   * Turns the waiting request of `from` to `to` into a friendship both ways, in one commit;
   * false if the request is gone or they are friends already.
   */
  acceptRequest(from: NamedUser, to: NamedUser): Promise<boolean>;
  /** Who asked `user` to be friends (incoming), and whom `user` asked (outgoing). */
  requests(user: string): Promise<{ incoming: NamedUser[]; outgoing: NamedUser[] }>;
  /** Every request to or from `user` goes (the account is deleted). */
  clearRequests(user: string): Promise<void>;
}

/**
 * Blocks: one user refuses another's messages, friend requests, group invitations, file offers
 * and presence. Kept one way (who blocked whom) and looked up either way.
 */
export interface BlockStore {
  /** `blocker` blocks `blocked`; false if they had already. Refused ("full") past `max`. */
  add(blocker: NamedUser, blocked: NamedUser, max: number): Promise<"added" | "already" | "full">;
  /** Lifts a block; false if there was none. */
  remove(blocker: string, blocked: string): Promise<boolean>;
  /** Whom `user` blocked. */
  list(user: string): Promise<NamedUser[]>;
  /** Whether `user` blocked `other`. */
  blocked(user: string, other: string): Promise<boolean>;
  /**
   * Users with a block between them and `user`, in either direction; without a promise when it
   * is in memory (every private message asks).
   */
  either(user: string): ReadonlySet<string> | Promise<ReadonlySet<string>>;
  /** Every block by or of `user` goes (the account is deleted). */
  clear(user: string): Promise<void>;
}

/** A group invitation waiting for the invitee's answer. */
export interface Invitation {
  group: number;
  groupName: string;
  /** Who invited (display form and identity). */
  from: NamedUser;
  time: Date;
}

export interface InvitationStore {
  /**
   * Records invitations of `invitees` to a group; those already invited to it are `waiting`.
   * Refused per invitee (returned as `full`) when they have `limits.perUser` invitations waiting,
   * or `limits.fromOne` from this inviter.
   */
  add(
    invitees: NamedUser[],
    invitation: Omit<Invitation, "time">,
    limits: { perUser: number; fromOne: number },
  ): Promise<{ invited: NamedUser[]; waiting: NamedUser[]; full: NamedUser[] }>;
  get(user: string, group: number): Promise<Invitation | null>;
  /** Ends an invitation (accepted, declined, or its group is gone); false if there was none. */
  remove(user: string, group: number): Promise<boolean>;
  /** Every invitation waiting for `user`, in group id order. */
  list(user: string): Promise<Invitation[]>;
  /** Drops the invitations to `user` made by `from` (a block). */
  removeFrom(user: string, from: string): Promise<void>;
  /** Every invitation to `user` goes (the account is deleted). */
  clear(user: string): Promise<void>;
}

export interface GroupRecord {
  id: number;
  name: string;
  creator: string;
  created: Date;
  /** Members now; kept in the record so that joins and leaves serialise on it. */
  size: number;
}

/** What an attempt to add a member did. */
export type AddMemberResult = "added" | "already_member" | "full" | "no_group";

export interface GroupStore {
  /** Creates a group with a fresh id from an atomic counter. */
  create(name: string, creator: string, members: NamedUser[]): Promise<GroupRecord>;
  get(id: number): Promise<GroupRecord | null>;
  members(id: number): Promise<NamedUser[]>;
  isMember(id: number, user: string): Promise<boolean>;
  /** Adds a member unless the group is gone, full (`max` members) or already has them. */
  addMember(id: number, member: NamedUser, max: number): Promise<AddMemberResult>;
  /** Removes a member; the group goes when its last member leaves. Returns those who remain. */
  removeMember(id: number, user: string): Promise<NamedUser[]>;
  groupsOf(user: string): Promise<GroupRecord[]>;
  /** How many groups `user` is in. */
  countOf(user: string): Promise<number>;
}

/** One chat message as the server keeps it until delivery (private and group) or in the backlog. */
export interface ChatMessage {
  /** Chosen by the sender's client (16 random bytes); with `from` it is the message's identity. */
  id: Uint8Array;
  time: Date;
  /** Sender's display name. */
  from: string;
  /** Recipient's display name, for private messages. */
  to?: string;
  group?: { id: number; name: string };
  world?: true;
  kind: "text" | "image";
  text?: string;
  image?: Uint8Array;
  /** Image file name, when given. */
  name?: string;
}

/**
 * A queued message with its place in the recipient's inbox: plain data, which `remove` takes
 * back (the same objects, or copies). `user` and `seq` name it.
 */
export interface InboxItem {
  /** The recipient (lowercase name). */
  readonly user: string;
  /** Its place in the recipient's inbox: rising by at least one per message, never reused. */
  readonly seq: number;
  readonly message: ChatMessage;
  /** Bytes counted against the recipient's queue limit. */
  readonly size: number;
  /** Bytes the item stands for in the store: its share of a blob shared by every recipient. */
  readonly cost: number;
}

/**
 * Why a message was stored for nobody: the store's budget for queued messages is used up, or
 * the sender's (`InboxLimits.maxTotalBytes`, `maxSenderBytes`).
 */
export type QueueRefusal = "store_full" | "sender_full";

/** What `enqueue` gives back as soon as the seqs are taken. */
export interface Enqueued {
  /** The items queued, in recipient order. */
  queued: InboxItem[];
  /** Recipients whose queue is full: they are skipped. */
  full: readonly string[];
  /** Recipients whose queue holds as much from this sender as one sender may fill: skipped. */
  capped: readonly string[];
  /** Set when a budget refused the message: nothing is queued. */
  refused: QueueRefusal | null;
  /** Bytes the queued copies stand for in the store (a shared blob counted once). */
  cost: number;
  /** Completes once every queued copy is committed or acknowledged; fails if a commit did. */
  durable: Completion;
}

export interface InboxLimits {
  maxMessages: number;
  maxBytes: number;
  /** The part of one inbox (of both limits above) one sender may fill; 100 or absent: all. */
  senderSharePercent?: number;
  /** Bytes in the store that one sender's queued messages may take. */
  maxSenderBytes?: number;
  /** Bytes in the store that all queued messages may take. */
  maxTotalBytes?: number;
}

export interface InboxStore {
  /**
   * Durably queues `message` for each recipient, in order. Resolves with the items queued and
   * the recipients whose queue is full (skipped).
   */
  append(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
  ): Promise<Omit<Enqueued, "durable">>;
  /**
   * Like `append`, but returns as soon as the seqs are taken, in call order (at once, without a
   * promise, when nothing has to be read or written first); `durable` then completes once every
   * queued copy is committed or acknowledged. `acksSoon` tells which recipients are online and
   * will likely acknowledge the message soon: a store may wait a moment before it writes their
   * copies, and write nothing for a copy acknowledged meanwhile. `placed` is told the queued
   * items synchronously as soon as their seqs are taken, before any other enqueue can take a
   * seq: items handed on from there reach each recipient in seq order, where a caller that
   * waited for the promise could be overtaken by a later enqueue.
   */
  enqueue(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
    acksSoon?: (user: string) => boolean,
    placed?: (queued: readonly InboxItem[]) => void,
  ): Enqueued | Promise<Enqueued>;
  /** Commits every deferred row now (before reading the inbox back from the store). */
  settle(): Promise<void>;
  /** Up to `limit` items with seq > `after`, oldest first, stopping past `maxBytes` (min. one). */
  read(user: string, after: number, limit: number, maxBytes?: number): Promise<InboxItem[]>;
  /**
   * Deletes delivered items (the client acknowledged every seq up to the last), in seq order:
   * items `enqueue` or `read` gave out, or copies of them. An item counted out already
   * (acknowledged before, or its write failed) is not counted out again.
   */
  remove(user: string, items: InboxItem[]): Promise<void>;
  /** How many messages and bytes wait for `user`. */
  stats(user: string): Promise<{ count: number; bytes: number }>;
  /** Bytes in the store for queued messages (a shared blob once): all, or one sender's. */
  storedBytes(sender?: string): number;
  /** Messages and bytes waiting in all inboxes this process has counted, without a scan. */
  queued(): Promise<{ count: number; bytes: number }>;
  /** Everything queued for `user` goes (the account is deleted). */
  clear(user: string): Promise<void>;
}

/** A world message and its place in the room's order: seq rises by one per message, for good. */
export interface WorldEntry {
  seq: number;
  message: ChatMessage;
}

export interface WorldStore {
  append(message: ChatMessage): Promise<void>;
  /** The backlog, oldest first. */
  recent(): ChatMessage[];
  /** The backlog with each message's place in the room's order (seq, rising), oldest first. */
  entries(): readonly WorldEntry[];
  /** Changes whenever the backlog does, so that what is built from it can be reused. */
  readonly version: number;
}
