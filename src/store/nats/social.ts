/** Friendships and requests, blocks, group invitations and groups in JetStream KV buckets. */

import type { BlockStore, FriendStore, GroupStore, InvitationStore } from "../types.ts";
import type { NatsStoreContext } from "./context.ts";

export function openSocial(_ctx: NatsStoreContext): Promise<{
  friends: FriendStore;
  blocks: BlockStore;
  invitations: InvitationStore;
  groups: GroupStore;
}> {
  throw new Error("The NATS social store is not built yet");
}
