/**
 * The store seam: handlers see only these interfaces. Today Deno KV implements them; a remote
 * store can replace it without touching the handlers.
 */

import type { PasswordHash } from "../crypto/password.ts";
import type { PendingWrite } from "./committer.ts";
import type { Completion } from "./completion.ts";

export interface UserRecord {
  /** The name as registered (display form); its lowercase is the identity. */
  name: string;
  password: PasswordHash;
  created: Date;
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
  /** Replaces a user's password hash; false when the user does not exist. */
  setPassword(name: string, password: PasswordHash): Promise<boolean>;
  /** Deletes the user's record (the account's other data goes through the other stores). */
  remove(name: string): Promise<boolean>;
}

export interface TokenRecord {
  /** The user's identity (lowercase name). */
  user: string;
  created: Date;
  expires: Date;
}

export interface IssuedToken {
  /** The secret the client keeps; the store keeps only its SHA-256. */
  token: Uint8Array;
  expires: Date;
}

export interface TokenStore {
  /** Issues a resume token, dropping the user's oldest ones beyond `maxPerUser`. */
  issue(user: string, ttlMs: number, maxPerUser: number): Promise<IssuedToken>;
  /** The token's record, or null when it is unknown, revoked or expired. */
  check(token: Uint8Array): Promise<TokenRecord | null>;
  revoke(token: Uint8Array): Promise<void>;
  revokeAll(user: string): Promise<void>;
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
  inbox: InboxStore;
  world: WorldStore;
  /** A cheap read that fails when the store does not answer (health checks). */
  ping(): Promise<void>;
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

/** A queued message with its place in the recipient's inbox. */
export interface InboxItem {
  /** The recipient (lowercase name). */
  user: string;
  seq: number;
  message: ChatMessage;
  /** Bytes counted against the recipient's queue limit. */
  size: number;
  /** Store-private: the write holding the item's row while that can still be cancelled. */
  staged: PendingWrite | null;
  /** Store-private: the row's index in `staged`. */
  stagedAt: number;
  /**
   * Store-private: counted out of the recipient's queue, by its removal (it was acknowledged)
   * or because its write failed (then it is not stored either).
   */
  gone: boolean;
}

/** What `enqueue` gives back as soon as the seqs are taken. */
export interface Enqueued {
  /** The items queued, in recipient order. */
  queued: InboxItem[];
  /** Recipients whose queue is full: they are skipped. */
  full: readonly string[];
  /** Completes once every queued copy is committed or acknowledged; fails if a commit did. */
  durable: Completion;
}

export interface InboxLimits {
  maxMessages: number;
  maxBytes: number;
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
  ): Promise<{ queued: InboxItem[]; full: readonly string[] }>;
  /**
   * Like `append`, but returns as soon as the seqs are taken, in call order (at once, without a
   * promise, when nothing has to be read or written first); `durable` then completes once every
   * queued copy is committed or acknowledged. Rows for recipients that `deferFor` names wait a
   * moment before they are committed: if the recipient acknowledges the message meanwhile, the
   * row is never written.
   */
  enqueue(
    recipients: string[],
    message: ChatMessage,
    limits: InboxLimits,
    deferFor?: (user: string) => boolean,
  ): Enqueued | Promise<Enqueued>;
  /** Commits every deferred row now (before reading the inbox back from the store). */
  settle(): Promise<void>;
  /** Up to `limit` items with seq > `after`, oldest first, stopping past `maxBytes` (min. one). */
  read(user: string, after: number, limit: number, maxBytes?: number): Promise<InboxItem[]>;
  /** Deletes delivered items (the client acknowledged them). */
  remove(user: string, items: InboxItem[]): Promise<void>;
  /** How many messages and bytes wait for `user`. */
  stats(user: string): Promise<{ count: number; bytes: number }>;
  /** Messages and bytes waiting in all inboxes this process has counted, without a scan. */
  queued(): Promise<{ count: number; bytes: number }>;
  /** Everything queued for `user` goes (the account is deleted). */
  clear(user: string): Promise<void>;
}

export interface WorldStore {
  append(message: ChatMessage): Promise<void>;
  /** The backlog, oldest first. */
  recent(): ChatMessage[];
  /** Changes whenever the backlog does, so that what is built from it can be reused. */
  readonly version: number;
}
