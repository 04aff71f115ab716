/**
 * The message-type registry: seed 000's numbers, the types Parley adds after them, and the
 * schema of each body. Requests travel client → server; responses echo the request id;
 * pushes carry id 0.
 */

import * as s from "./schema.ts";

export const MsgType = {
  // Requests (client → server). Seed 000 numbers first.
  LOGIN: 1,
  REGISTER: 2,
  ADD_FRIEND: 3,
  CREATE_G: 4,
  INVITE: 5,
  SEND: 6,
  QUERY_MEMBER: 7,
  LOGOUT: 10,
  // Added by Parley.
  RESUME: 11,
  CHANGE_PASSWORD: 12,
  PING: 13,
  REMOVE_FRIEND: 14,
  LEAVE_G: 15,
  WHO: 16,
  ACK: 17,
  LIST_FRIENDS: 18,
  LIST_GROUPS: 19,
  FILE_OFFER: 20,
  FILE_ANSWER: 21,
  FILE_CHUNK: 22,
  FILE_ACK: 23,
  FILE_CANCEL: 24,
  FIND_USER: 25,
  // Consent: blocks and group invitations (requests 30-39).
  BLOCK: 30,
  UNBLOCK: 31,
  LIST_BLOCKS: 32,
  JOIN_G: 33,
  DECLINE_G: 34,

  // Server → client.
  PASS: 100,
  LG_OK: 200,
  REG_OK: 201,
  INITIALIZE: 202,
  OK: 203,
  PONG: 204,
  SENT: 205,
  FRIEND_LIST: 206,
  GROUP_LIST: 207,
  ONLINE: 208,
  FILE_OFFERED: 209,
  BLOCK_LIST: 215,
  STATUS_ADD_FRIEND: 300,
  NEW_FRIEND: 301,
  ADD_TO_G: 303,
  G_MEMBER: 304,
  STATUS_INVITE: 305,
  NEW_MEMBER: 306,
  FRIEND_REMOVED: 307,
  MEMBER_LEFT: 308,
  FRIEND_ONLINE: 309,
  FRIEND_OFFLINE: 310,
  FILE_INCOMING: 311,
  FILE_ANSWERED: 312,
  FILE_DATA: 313,
  FILE_PROGRESS: 314,
  FILE_CANCELLED: 315,
  FRIEND_REQUEST: 320,
  G_INVITATION: 321,
  LG_FAIL: 400,
  REG_FAIL: 401,
  KICK: 500,
  GENERAL_ERROR: 501,
} as const;

export type MsgType = typeof MsgType[keyof typeof MsgType];

/** The mnemonic of a type number ("LOGIN"), for logs and error messages. */
export function msgTypeName(type: number): string {
  for (const [name, value] of Object.entries(MsgType)) if (value === type) return name;
  return `TYPE_${type}`;
}

/** Upper bounds on request fields; the handlers apply the stricter account rules. */
export const MAX_USERNAME_FIELD = 64;
export const MAX_PASSWORD_FIELD = 1024;
export const TOKEN_BYTES = 32;
export const MESSAGE_ID_BYTES = 16;
/** Absolute caps on fields; the configured limits (smaller) are applied by the handlers. */
export const MAX_GROUP_ID = Number.MAX_SAFE_INTEGER;
const MAX_NAME_FIELD = 255;
const MAX_TEXT_FIELD = 1024 * 1024;
const MAX_LIST_FIELD = 100_000;

const username = s.str(0, MAX_USERNAME_FIELD);
const groupId = s.int(1, MAX_GROUP_ID);
const transferId = s.int(1, Number.MAX_SAFE_INTEGER);

const credentials = s.tuple(s.str(0, MAX_USERNAME_FIELD), s.str(0, MAX_PASSWORD_FIELD));
/** Longest invite code field: a code is 23 characters; room for spaces typed around it. */
const MAX_INVITE_FIELD = 64;
const invited = s.tuple(
  s.str(0, MAX_USERNAME_FIELD),
  s.str(0, MAX_PASSWORD_FIELD),
  s.str(0, MAX_INVITE_FIELD),
);

/** REGISTER: `[username, password]`, or with an invite code third; the code reads as undefined when absent. */
const registration: s.Schema<[string, string, string | undefined]> = {
  describe: credentials.describe,
  check: (v, path) =>
    Array.isArray(v) && v.length === 3
      ? invited.check(v, path)
      : [...credentials.check(v, path), undefined],
};

/** Bytes of the device id a client may give at LOGIN (section 16.3 of PROTOCOL.md). */
export const DEVICE_ID_BYTES = 16;
/** LOGIN's session kinds: the seed's one, and a script's that neither kicks nor is announced. */
export const SessionKind = { INTERACTIVE: "interactive", ONE_SHOT: "one_shot" } as const;

const token = s.bytes(TOKEN_BYTES, TOKEN_BYTES);
const resumeFields = s.dict({
  token,
  /** The id of the newest world message the client has: INITIALIZE then carries only later ones. */
  world_after: s.optional(s.bytes(MESSAGE_ID_BYTES, MESSAGE_ID_BYTES)),
});

/** RESUME's body: the token alone (as first specified), or a dict with the token and a cursor. */
const resumeBody: s.Schema<{ token: Uint8Array; world_after?: Uint8Array }> = {
  describe: `bytes or ${resumeFields.describe}`,
  // Anything but a dict is checked as the token, so that its errors read as they always did.
  check: (v, path) =>
    s.kindOf(v) === "dict" ? resumeFields.check(v, path) : { token: token.check(v, path) },
};

/** Body schemas of the requests a server accepts. */
export const RequestBody = {
  // The third element is optional: clients of protocol version 1 send two.
  [MsgType.LOGIN]: s.tuple(
    s.str(0, MAX_USERNAME_FIELD),
    s.str(0, MAX_PASSWORD_FIELD),
    s.optional(s.dict({
      kind: s.optional(s.str(0, 32)),
      device: s.optional(s.bytes(DEVICE_ID_BYTES, DEVICE_ID_BYTES)),
    })),
  ),
  [MsgType.REGISTER]: registration,
  // Seed 000 sends the username; Parley ignores any claim and logs out the session's own user.
  [MsgType.LOGOUT]: s.dictOr(
    s.dict({ everywhere: s.optional(s.bool) }),
    s.optional(s.str(0, MAX_USERNAME_FIELD)),
  ),
  [MsgType.RESUME]: resumeBody,
  [MsgType.CHANGE_PASSWORD]: s.tuple(s.str(0, MAX_PASSWORD_FIELD), s.str(0, MAX_PASSWORD_FIELD)),
  [MsgType.PING]: s.any,
  [MsgType.ADD_FRIEND]: username,
  [MsgType.REMOVE_FRIEND]: username,
  [MsgType.FIND_USER]: username,
  [MsgType.LIST_FRIENDS]: s.any,
  [MsgType.LIST_GROUPS]: s.any,
  [MsgType.CREATE_G]: s.tuple(s.str(0, MAX_NAME_FIELD), s.list(username, MAX_LIST_FIELD)),
  [MsgType.INVITE]: s.tuple(groupId, username),
  [MsgType.QUERY_MEMBER]: groupId,
  [MsgType.LEAVE_G]: groupId,
  [MsgType.SEND]: s.dict({
    id: s.bytes(MESSAGE_ID_BYTES, MESSAGE_ID_BYTES),
    target_username: s.optional(username),
    group_id: s.optional(groupId),
    world: s.optional(s.bool),
    type: s.str(0, 16),
    data: s.any,
    name: s.optional(s.str(0, MAX_NAME_FIELD)),
  }),
  [MsgType.ACK]: s.int(1, Number.MAX_SAFE_INTEGER),
  [MsgType.WHO]: s.optional(s.dict({
    offset: s.optional(s.int(0, Number.MAX_SAFE_INTEGER)),
    limit: s.optional(s.int(1, 1000)),
  })),
  [MsgType.FILE_OFFER]: s.dict({
    target_username: username,
    name: s.str(1, MAX_NAME_FIELD),
    size: s.int(0, Number.MAX_SAFE_INTEGER),
    sha256: s.bytes(32, 32),
  }),
  [MsgType.FILE_ANSWER]: s.dict({ transfer_id: transferId, accept: s.bool }),
  [MsgType.BLOCK]: username,
  [MsgType.UNBLOCK]: username,
  [MsgType.LIST_BLOCKS]: s.any,
  [MsgType.JOIN_G]: groupId,
  [MsgType.DECLINE_G]: groupId,
  [MsgType.FILE_CHUNK]: s.dict({
    transfer_id: transferId,
    offset: s.int(0, Number.MAX_SAFE_INTEGER),
    data: s.bytes(),
  }),
  [MsgType.FILE_ACK]: s.dict({
    transfer_id: transferId,
    received: s.int(0, Number.MAX_SAFE_INTEGER),
    sha256_ok: s.optional(s.bool),
  }),
  [MsgType.FILE_CANCEL]: s.dict({
    transfer_id: transferId,
    reason: s.optional(s.str(0, MAX_TEXT_FIELD)),
  }),
} as const;

export type RequestType = keyof typeof RequestBody;
export type RequestBodyOf<T extends RequestType> = s.Infer<typeof RequestBody[T]>;

/** Body schemas of what a server sends, checked by the client library. */
export const ServerBody = {
  [MsgType.LG_OK]: s.dict({
    username: s.str(),
    token: s.optional(s.bytes(TOKEN_BYTES)),
    expires: s.optional(s.datetime),
  }),
  [MsgType.REG_OK]: s.dict({ username: s.str() }),
  [MsgType.OK]: s.any,
  [MsgType.PONG]: s.any,
  [MsgType.LG_FAIL]: s.dict({ code: s.int(), message: s.str() }),
  [MsgType.REG_FAIL]: s.dict({ code: s.int(), message: s.str() }),
  [MsgType.GENERAL_ERROR]: s.dict({ code: s.int(), message: s.str() }),
  [MsgType.KICK]: s.dict({ reason: s.str() }),
} as const;

/** The response types that mean a request failed, each carrying `{code, message}`. */
export const FAILURE_TYPES: ReadonlySet<number> = new Set([
  MsgType.LG_FAIL,
  MsgType.REG_FAIL,
  MsgType.GENERAL_ERROR,
]);

/** The failure type seed 000 gives a request: LG_FAIL for logins, REG_FAIL for REGISTER. */
export function failureTypeOf(request: number): number {
  if (request === MsgType.LOGIN || request === MsgType.RESUME) return MsgType.LG_FAIL;
  if (request === MsgType.REGISTER) return MsgType.REG_FAIL;
  if (request === MsgType.ADD_FRIEND) return MsgType.STATUS_ADD_FRIEND;
  if (request === MsgType.INVITE) return MsgType.STATUS_INVITE;
  return MsgType.GENERAL_ERROR;
}

/** Seed 000's status replies carry `success`; a failed one is `{success: false, code, message}`. */
export const STATUS_TYPES: ReadonlySet<number> = new Set([
  MsgType.STATUS_ADD_FRIEND,
  MsgType.STATUS_INVITE,
]);
