/**
 * Error classes for the protocol layers and the wire error codes.
 *
 * One class per condition a caller is meant to catch; the wire codes are one flat table so a
 * client in any language can switch on them.
 */

/** Bytes that do not form a valid value, message or frame. */
export class DecodeError extends Error {
  override name = "DecodeError";
}

/** A frame whose length header is zero, too small for a tag, or above the configured maximum. */
export class FrameSizeError extends Error {
  override name = "FrameSizeError";
}

/** A frame that fails AES-GCM authentication: tampered, replayed, reordered or truncated. */
export class FrameAuthError extends Error {
  override name = "FrameAuthError";
}

/** A handshake that is malformed, from an unsupported version, or badly signed. */
export class HandshakeError extends Error {
  override name = "HandshakeError";
}

/** A message body that does not match its type's schema. */
export class SchemaError extends Error {
  override name = "SchemaError";
  /** Where in the body the problem is (".members[2]"); "" for the body itself. */
  path: string;
  /** What is wrong there ("must be bool, got int"). */
  readonly problem: string;

  constructor(path: string, problem: string) {
    super(`${path || "body"} ${problem}`);
    this.path = path;
    this.problem = problem;
  }

  /**
   * Puts a container's part of the path in front, as the error passes up through it. Paths are
   * built only on failure: checking a valid body makes no strings.
   */
  within(outer: string): this {
    this.path = outer + this.path;
    this.message = `${this.path || "body"} ${this.problem}`;
    return this;
  }
}

/**
 * Wire error codes, carried as `{code, message}` in LG_FAIL, REG_FAIL and GENERAL_ERROR.
 * 0 and 1 keep seed 000's LG_FAIL meanings.
 */
export const ErrorCode = {
  NO_SUCH_USER: 0,
  WRONG_PASSWORD: 1,
  USERNAME_TAKEN: 2,
  BAD_USERNAME: 3,
  BAD_PASSWORD: 4,
  BAD_TOKEN: 5,
  NOT_LOGGED_IN: 6,
  ALREADY_LOGGED_IN: 7,
  UNKNOWN_TYPE: 8,
  BAD_REQUEST: 9,
  SERVER_BUSY: 10,
  INTERNAL: 11,
  SHUTTING_DOWN: 12,
  NO_SUCH_GROUP: 13,
  NOT_A_MEMBER: 14,
  ALREADY_FRIENDS: 15,
  NOT_FRIENDS: 16,
  ALREADY_MEMBER: 17,
  QUEUE_FULL: 18,
  TOO_LARGE: 19,
  USER_OFFLINE: 20,
  NO_SUCH_TRANSFER: 21,
  GROUP_FULL: 22,
  LIMIT_REACHED: 23,
  CANNOT_SELF: 24,
  RATE_LIMITED: 25,
  THROTTLED: 26,
  NOT_INTERACTIVE: 35,
  STORE_FULL: 45,
  OUTBOX_FULL: 46,
  SENDING_TOO_FAST: 47,
  // 50-54 are Parley's account codes.
  REGISTER_CLOSED: 50,
  BAD_INVITE: 51,
  // Consent (codes 55-59).
  BLOCKED: 55,
  NOT_BLOCKED: 56,
  NO_SUCH_INVITATION: 57,
} as const;

export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** The name of a wire error code, for messages and logs ("NO_SUCH_USER"). */
export function errorCodeName(code: number): string {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name;
  return `ERROR_${code}`;
}

/** A request refused with a wire error code; handlers throw it, clients receive it. */
export class ParleyError extends Error {
  override name = "ParleyError";
  constructor(readonly code: number, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
