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

  // Server → client.
  PASS: 100,
  LG_OK: 200,
  REG_OK: 201,
  INITIALIZE: 202,
  OK: 203,
  PONG: 204,
  STATUS_ADD_FRIEND: 300,
  NEW_FRIEND: 301,
  ADD_TO_G: 303,
  G_MEMBER: 304,
  STATUS_INVITE: 305,
  NEW_MEMBER: 306,
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

const credentials = s.tuple(s.str(0, MAX_USERNAME_FIELD), s.str(0, MAX_PASSWORD_FIELD));

/** Body schemas of the requests a server accepts. */
export const RequestBody = {
  [MsgType.LOGIN]: credentials,
  [MsgType.REGISTER]: credentials,
  // Seed 000 sends the username; Parley ignores any claim and logs out the session's own user.
  [MsgType.LOGOUT]: s.optional(s.str(0, MAX_USERNAME_FIELD)),
  [MsgType.RESUME]: s.bytes(TOKEN_BYTES),
  [MsgType.CHANGE_PASSWORD]: s.tuple(s.str(0, MAX_PASSWORD_FIELD), s.str(0, MAX_PASSWORD_FIELD)),
  [MsgType.PING]: s.any,
} as const;

export type RequestType = keyof typeof RequestBody;
export type RequestBodyOf<T extends RequestType> = s.Infer<typeof RequestBody[T]>;

/** Body schemas of what a server sends, checked by the client library. */
export const ServerBody = {
  [MsgType.LG_OK]: s.dict({
    username: s.str(),
    token: s.optional(s.bytes(TOKEN_BYTES)),
    expires: s.datetime,
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
  return MsgType.GENERAL_ERROR;
}
