/** What every handler gets: configuration and the two seams (store, hub), plus shared services. */

import type { Config } from "../config/config.ts";
import type { PasswordHasher } from "../crypto/password.ts";
import type { Store } from "../store/types.ts";
import type { Hub } from "./hub.ts";
import type { Logger } from "./log.ts";
import type { Session } from "./session.ts";
import type { Value } from "../protocol/value.ts";

export interface ServerContext {
  config: Config;
  store: Store;
  hub: Hub;
  hasher: PasswordHasher;
  log: Logger;
}

/** A handler's answer: the response type and body, sent back with the request's id. */
export interface Reply {
  type: number;
  body: Value;
}

export type Handler<B> = (ctx: ServerContext, session: Session, body: B) => Promise<Reply>;
