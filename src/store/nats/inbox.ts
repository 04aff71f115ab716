/** Inboxes (undelivered messages) and their shared image blobs in JetStream. */

import type { InboxStore } from "../types.ts";
import type { NatsStoreContext } from "./context.ts";

export function openInbox(
  _ctx: NatsStoreContext,
): Promise<InboxStore & { close(): Promise<void> }> {
  throw new Error("The NATS inbox store is not built yet");
}
