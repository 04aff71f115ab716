/**
 * `parley admin --cluster`: the commands against a live cluster's NATS store. The nodes keep
 * no cache that a change could leave stale (every read they trust goes to JetStream), so
 * nothing must be stopped: a change goes through the store's own functions, as a node's
 * handler would make it, and sessions that must end are ended on every node through the hub's
 * end subject, as a node does after a password change.
 */

import { ADMIN_NODE, endMessage, openFrame, Subjects } from "../cluster/bus.ts";
import { connectCluster, type NatsConnection } from "../cluster/connect.ts";
import { systemClock } from "../clock/clock.ts";
import type { Config } from "../config/config.ts";
import { NatsStoreContext } from "../store/nats/context.ts";
import { storeExists } from "../store/nats/listings.ts";
import { openNatsStore } from "../store/nats/nats_store.ts";
import type { Store } from "../store/types.ts";
import type { AdminContext } from "./command.ts";

/** How long `stats` listens for the nodes' heartbeats (they beat every second). */
export const LISTEN_MS = 1500;

export type ClusterSettings = Config["cluster"];

/** Connects to the cluster's NATS servers for one command; the connection is closed after. */
export async function withNats<T>(
  cluster: ClusterSettings,
  command: string,
  fn: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  let nc: NatsConnection;
  try {
    nc = await connectCluster(cluster.nats, { name: `parley-admin-${command}` });
  } catch (e) {
    throw new Error(
      `Cannot reach the cluster's NATS servers (${cluster.nats.join(", ")}): ` +
        (e as Error).message,
    );
  }
  try {
    return await fn(nc);
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

/** The store's context under the cluster's prefix; throws unless the prefix holds a store. */
export async function storeContext(
  nc: NatsConnection,
  ctx: AdminContext,
  cluster: ClusterSettings,
  mustExist = true,
): Promise<NatsStoreContext> {
  const store = await NatsStoreContext.open(nc, {
    prefix: cluster.prefix,
    replicas: cluster.replicas,
    worldBacklog: ctx.config.world.backlog,
    clock: systemClock,
  });
  if (mustExist && !await storeExists(store)) {
    throw new Error(
      `There is no Parley store under the prefix "${cluster.prefix}" on the cluster ` +
        `(${cluster.nats.join(", ")}); check --prefix or cluster.prefix`,
    );
  }
  return store;
}

/** Runs `fn` on the cluster's store, as a node opens it (the store must exist). */
export function withClusterStore<T>(
  ctx: AdminContext,
  cluster: ClusterSettings,
  command: string,
  fn: (store: Store, nc: NatsConnection) => Promise<T>,
): Promise<T> {
  return withNats(cluster, command, async (nc) => {
    await storeContext(nc, ctx, cluster);
    const store = await openNatsStore(nc, {
      prefix: cluster.prefix,
      replicas: cluster.replicas,
      worldBacklog: ctx.config.world.backlog,
    });
    try {
      return await fn(store, nc);
    } finally {
      await store.close();
    }
  });
}

/** Ends `user`'s sessions on every node (as a node does when credentials change). */
export async function endSessions(
  nc: NatsConnection,
  prefix: string,
  user: string,
  reason: string,
): Promise<void> {
  nc.publish(new Subjects(prefix).end, endMessage({ node: ADMIN_NODE, user, reason }));
  await nc.flush();
}

export interface Online {
  /** Nodes heard beating. */
  nodes: number;
  /** Users online on them (each user is on one node). */
  users: number;
  /** Nodes heard but whose roster did not come. */
  silent: number;
}

/** Listens for the nodes' heartbeats for `ms`, then asks each node for its roster. */
export async function onlineNow(
  nc: NatsConnection,
  prefix: string,
  ms = LISTEN_MS,
): Promise<Online> {
  const subjects = new Subjects(prefix);
  const nodes = new Set<string>();
  const sub = nc.subscribe(subjects.beat, {
    callback: (err, m) => {
      if (err) return;
      try {
        nodes.add(openFrame<{ node: string }>(m.data).header.node);
      } catch {
        // Not a beat this Parley reads: not counted.
      }
    },
  });
  await new Promise((r) => setTimeout(r, ms));
  sub.unsubscribe();
  let users = 0;
  let silent = 0;
  await Promise.all([...nodes].map(async (node) => {
    try {
      const reply = await nc.request(subjects.node(node, "roster"), new Uint8Array(0), {
        timeout: 2000,
      });
      users += openFrame<{ users: unknown[] }>(reply.data).header.users.length;
    } catch {
      silent++;
    }
  }));
  return { nodes: nodes.size, users, silent };
}
