/**
 * The cluster store: the interfaces of ../types.ts over NATS JetStream, with three replicas of
 * every record, so that any number of Parley nodes share one state and a NATS server can die.
 * It keeps nothing of its own that another node could not rebuild: every read it must trust
 * goes to JetStream. docs/cluster.md says which records live in which bucket or stream, and why.
 */

import type { NatsConnection } from "../../cluster/nats.ts";
import { systemClock } from "../../clock/clock.ts";
import type { Store } from "../types.ts";
import { openAccounts } from "./accounts.ts";
import { NatsStoreContext, type NatsStoreOptions } from "./context.ts";
import { openInbox } from "./inbox.ts";
import { openSocial } from "./social.ts";
import { openWorld } from "./world.ts";
import { clusterIdentity } from "./identity.ts";
import type { KeyPair } from "../../crypto/keys.ts";
import { natsUnavailable } from "./unavailable.ts";

export type { NatsStoreOptions } from "./context.ts";

/** Opens the store over `nc`, which stays the caller's (close() does not close it). */
export async function openNatsStore(nc: NatsConnection, opts: NatsStoreOptions): Promise<Store> {
  const ctx = await NatsStoreContext.open(nc, { ...opts, clock: opts.clock ?? systemClock });
  const parts = await Promise.allSettled(
    [
      openAccounts(ctx),
      openSocial(ctx),
      openInbox(ctx),
      openWorld(ctx),
    ] as const,
  );
  const failed = parts.find((p) => p.status === "rejected");
  if (failed) {
    // What did open is closed again: no watcher or consumer outlives a store that never was.
    for (const p of parts) {
      if (p.status === "fulfilled" && "close" in p.value) await p.value.close().catch(() => {});
    }
    throw failed.reason;
  }
  const value = <T>(p: PromiseSettledResult<T>) => (p as PromiseFulfilledResult<T>).value;
  const [accounts, social, inbox, world] = [
    value(parts[0]),
    value(parts[1]),
    value(parts[2]),
    value(parts[3]),
  ];
  let closed = false;
  return {
    ...accounts,
    ...social,
    inbox,
    world,
    ping: async () => {
      if (nc.isClosed()) throw new Error("The NATS connection is closed");
      await ctx.jsm.getAccountInfo();
    },
    unavailable: natsUnavailable,
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([inbox.close(), world.close()]);
    },
  };
}

/** Deletes every bucket and stream of the store under `prefix` (tests; `admin restore`). */
export async function destroyNatsStore(nc: NatsConnection, prefix: string): Promise<void> {
  const ctx = await NatsStoreContext.open(nc, { worldBacklog: 0, clock: systemClock, prefix });
  for (const name of await ctx.names()) await ctx.jsm.streams.delete(name);
}

/** The cluster's identity key (identity.ts), with `dataDir`'s key file checked against it. */
export async function natsIdentity(
  nc: NatsConnection,
  opts: Pick<NatsStoreOptions, "prefix" | "replicas">,
  dataDir: string,
): Promise<KeyPair> {
  const ctx = await NatsStoreContext.open(nc, { ...opts, worldBacklog: 0, clock: systemClock });
  return await clusterIdentity(ctx, dataDir);
}
