/**
 * Users, token families and invite codes in JetStream KV buckets (`users`, `tokens`,
 * `invites`): see users.ts, tokens.ts and invites.ts for each one's keys and why.
 */

import type { InviteStore, TokenStore, UserStore } from "../types.ts";
import type { NatsStoreContext } from "./context.ts";
import { openRecords } from "./kv_records.ts";
import { NatsInviteStore } from "./invites.ts";
import { NatsTokenStore } from "./tokens.ts";
import { NatsUserStore } from "./users.ts";

export async function openAccounts(
  ctx: NatsStoreContext,
): Promise<{ users: UserStore; tokens: TokenStore; invites: InviteStore }> {
  const [users, tokens, invites] = await Promise.all([
    openRecords(ctx, "users"),
    openRecords(ctx, "tokens"),
    openRecords(ctx, "invites"),
  ]);
  return {
    users: new NatsUserStore(users, ctx.clock),
    tokens: new NatsTokenStore(tokens, ctx.clock),
    invites: new NatsInviteStore(invites, ctx.clock),
  };
}
