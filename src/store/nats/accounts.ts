/** Users, token families and invite codes in JetStream KV buckets. */

import type { InviteStore, TokenStore, UserStore } from "../types.ts";
import type { NatsStoreContext } from "./context.ts";

export function openAccounts(
  _ctx: NatsStoreContext,
): Promise<{ users: UserStore; tokens: TokenStore; invites: InviteStore }> {
  throw new Error("The NATS accounts store is not built yet");
}
