/** What every handler gets: configuration and the two seams (store, hub), plus shared services. */

import type { Config } from "../config/config.ts";
import type { PasswordHasher } from "../crypto/password.ts";
import type { Completion } from "../store/completion.ts";
import type { Store } from "../store/types.ts";
import type { FileRelay } from "./file_relay.ts";
import type { Hub } from "./hub.ts";
import type { LoginThrottle, RegistrationBudget } from "./throttle.ts";
import type { Logger } from "./log.ts";
import type { SendBudget } from "./send_budget.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { LoggedIn, Session } from "./session.ts";
import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import type { Value } from "../protocol/value.ts";
import type { OutboundTotal } from "../transport/outbound_total.ts";

export interface ServerContext {
  config: Config;
  store: Store;
  hub: Hub;
  hasher: PasswordHasher;
  log: Logger;
  files: FileRelay;
  logins: LoginThrottle;
  /** Each sender's bytes of queued messages per minute (SEND). */
  sends: SendBudget;
  /** New accounts allowed per address and overall. */
  registrations: RegistrationBudget;
  /** Counters for /metrics; each hook is one cheap call. */
  metrics: ServerMetrics;
  /** Sealed bytes waiting for every session's socket (limits.serverOutboundBytes). */
  outbound: OutboundTotal;
}

/** A handler's answer: the response type and body, sent back with the request's id. */
export interface Reply {
  type: number;
  body: Value;
  /** Runs after the reply is queued, so that pushes it causes follow the reply. */
  after?: () => void | Promise<void>;
  /**
   * The reply waits for this (a message becoming durable) without holding up the requests
   * after it; their replies queue behind it. If it rejects, the request fails instead.
   */
  durable?: Completion;
}

/**
 * Handlers return null for the few messages that are answered only when they fail (ACK). A
 * handler that needs no I/O may answer without a promise.
 */
export type Handler<B> = (
  ctx: ServerContext,
  session: Session,
  body: B,
) => Reply | null | Promise<Reply | null>;

/** The session's login; the dispatcher has already refused logged-out sessions. */
export function me(session: Session): LoggedIn {
  if (!session.login) throw new ParleyError(ErrorCode.NOT_LOGGED_IN, "Log in first");
  return session.login;
}
