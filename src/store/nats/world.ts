/** The world room's backlog in a JetStream stream, mirrored in memory on every node. */

import type { WorldStore } from "../types.ts";
import type { NatsStoreContext } from "./context.ts";

export function openWorld(
  _ctx: NatsStoreContext,
): Promise<WorldStore & { close(): Promise<void> }> {
  throw new Error("The NATS world store is not built yet");
}
