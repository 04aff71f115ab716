/**
 * Friendships and requests, blocks and group invitations in the `social` bucket, groups in
 * the `groups` bucket: see pairs.ts, invitations.ts and groups.ts for the keys and why.
 */

import type { BlockStore, FriendStore, GroupStore, InvitationStore } from "../types.ts";
import { NatsBlockStore } from "./blocks.ts";
import type { NatsStoreContext } from "./context.ts";
import { openRecords } from "./kv_records.ts";
import { NatsFriendStore } from "./friends.ts";
import { NatsGroupStore } from "./groups.ts";
import { NatsInvitationStore } from "./invitations.ts";
import { PairStore } from "./pairs.ts";

export async function openSocial(ctx: NatsStoreContext): Promise<{
  friends: FriendStore;
  blocks: BlockStore;
  invitations: InvitationStore;
  groups: GroupStore;
}> {
  const [social, groups] = await Promise.all([
    openRecords(ctx, "social"),
    openRecords(ctx, "groups"),
  ]);
  const pairs = new PairStore(social, ctx.clock);
  return {
    friends: new NatsFriendStore(pairs),
    blocks: new NatsBlockStore(pairs),
    invitations: new NatsInvitationStore(social, ctx.clock),
    groups: new NatsGroupStore(groups, ctx.clock),
  };
}
