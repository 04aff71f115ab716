/**
 * What makes a server a cluster node: one NATS connection, the NATS store over it, the
 * cluster's identity key and the cluster hub. Opened before the server serves, closed after
 * its sessions are gone.
 */

import { connectCluster, type NatsConnection } from "../../cluster/connect.ts";
import type { Clock } from "../../clock/clock.ts";
import type { Config } from "../../config/config.ts";
import type { KeyPair } from "../../crypto/keys.ts";
import { ClusterIdentityError } from "../../store/nats/identity.ts";
import { natsIdentity, openNatsStore } from "../../store/nats/nats_store.ts";
import type { Store } from "../../store/types.ts";
import type { HubMetrics } from "../hub.ts";
import type { Logger } from "../log.ts";
import { ClusterHub } from "./cluster_hub.ts";
import { type HubBus, natsBus } from "./hub_bus.ts";

export interface ClusterNode {
  nc: NatsConnection;
  /** What the hub and the file relay talk over. */
  bus: HubBus;
  store: Store;
  identity: KeyPair;
  hub: ClusterHub;
  /** NATS reconnects since the node started (for /metrics). */
  readonly reconnects: number;
  /** Whether the NATS connection is up now. */
  readonly connected: boolean;
  /** Stops the hub, closes the store, drains the connection. */
  close(): Promise<void>;
}

export async function joinCluster(
  config: Config,
  log: Logger,
  clock: Clock,
  metrics: HubMetrics,
): Promise<ClusterNode> {
  const { cluster } = config;
  let nc: NatsConnection;
  try {
    nc = await connectCluster(cluster.nats, { name: "parley-node" });
  } catch (e) {
    throw new Error(
      `Cannot reach a NATS server of the cluster (${cluster.nats.join(", ")}): ${
        (e as Error).message
      }`,
    );
  }
  let reconnects = 0;
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        connected = false;
        log.warn("cluster.disconnected", { server: String(s.server) });
      }
      if (s.type === "reconnect") {
        connected = true;
        reconnects++;
        log.info("cluster.nats_reconnected", { server: String(s.server) });
      }
    }
  })();
  try {
    const opts = { prefix: cluster.prefix, replicas: cluster.replicas };
    const identity = await natsIdentity(nc, opts, config.dataDir);
    const store = await openNatsStore(nc, { ...opts, worldBacklog: config.world.backlog, clock });
    const bus = natsBus(nc);
    const hub = new ClusterHub({
      bus,
      prefix: cluster.prefix,
      clock,
      log,
      metrics,
      nodeTimeoutMs: cluster.nodeTimeoutMs,
    });
    log.info("cluster.joined", { node: hub.node, nats: nc.getServer() });
    return {
      nc,
      bus,
      store,
      identity,
      hub,
      get reconnects() {
        return reconnects;
      },
      get connected() {
        return connected && !nc.isClosed();
      },
      async close() {
        await hub.close();
        await store.close();
        await nc.drain().catch(() => nc.close());
      },
    };
  } catch (e) {
    await nc.close();
    // The identity key's own problem (another key in this node's file) is said as it is.
    if (e instanceof ClusterIdentityError) throw e;
    // A JetStream that does not answer is the usual cause: the server runs without JetStream,
    // or fewer than a majority of the cluster's servers run.
    const why = (e as Error).message;
    throw new Error(
      `The cluster's JetStream at ${nc.getServer()} did not answer (${why}): is JetStream on, ` +
        "and do most of the NATS servers run? See docs/cluster.md",
    );
  }
}
