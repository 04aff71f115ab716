/**
 * A whole store as plain data, read from one kind of store and written into another: a single
 * server's Deno KV store (kv_export.ts) into a cluster's NATS store (nats/import.ts), for
 * `parley admin restore --cluster` of a data dir's backup. It says what a store holds in the
 * terms of the seam (types.ts), not in either layout's: each side maps its own keys to it.
 *
 * Every stream is read once, in order; what a writer must see whole (the relations between
 * users, which both layouts index per user) it gathers itself.
 */

import type {
  ChatMessage,
  GroupRecord,
  Invitation,
  InviteRecord,
  NamedUser,
  TokenFamily,
  UserRecord,
} from "./types.ts";

/** A token family with the hashes (token_ids.ts hashOf) that tell its tokens apart. */
export interface FamilyImage extends TokenFamily {
  /** The hash of the token that resumes now. */
  current: string;
  /** The hash of the token `current` replaced, valid for the grace after `rotated`. */
  previous: string | null;
  rotated: Date | null;
  /** Hashes of older tokens of the family, oldest first: presented again, they are reuse. */
  retired: string[];
}

/** An invite code: only the SHA-256 (hex) of its normalised form is ever stored. */
export interface InviteImage {
  hash: string;
  record: InviteRecord;
}

/**
 * What holds between two users: friends (either way round), a friend request that `from` made
 * and `to` has not answered, or a block of `to` by `from`.
 */
export interface RelationImage {
  kind: "friend" | "request" | "block";
  from: NamedUser;
  to: NamedUser;
}

export interface GroupImage {
  record: GroupRecord;
  members: NamedUser[];
}

export interface InvitationImage {
  /** The invitee (identity). */
  user: string;
  invitation: Invitation;
}

/** Content stored once for several queued messages: read with `StoreImage.blob`. */
export interface BlobImage {
  id: string;
  bytes: number;
  /** The message's text in UTF-8 (absent: its image). */
  text?: true;
}

/** A queued message as stored: its content in `blob` when shared, else in the message. */
export interface QueuedImage {
  /** The recipient (identity). */
  user: string;
  message: ChatMessage;
  /** Bytes counted against the recipient's queue limit. */
  size: number;
  /** Bytes it stands for in the store (its share of a blob). */
  cost: number;
  blob?: BlobImage;
}

export interface StoreImage {
  users(): AsyncIterable<UserRecord>;
  /** Which account holds each look-alike key (protocol/names.ts usernameLookalikeKey). */
  lookalikes(): AsyncIterable<{ look: string; owner: string }>;
  families(): AsyncIterable<FamilyImage>;
  invites(): AsyncIterable<InviteImage>;
  /** A relation may come once per side: a writer merges the repeats. */
  relations(): AsyncIterable<RelationImage>;
  groups(): AsyncIterable<GroupImage>;
  /** The last group id ever given (at least every id of `groups`): new groups go above it. */
  lastGroupId(): Promise<number>;
  invitations(): AsyncIterable<InvitationImage>;
  /** Each user's queue in its order, one user after another. */
  queued(): AsyncIterable<QueuedImage>;
  /** A blob's content; null when the store holds it incomplete. */
  blob(blob: BlobImage): Promise<Uint8Array | null>;
  /** The world room's backlog, oldest first. */
  world(): AsyncIterable<ChatMessage>;
}
