/**
 * The one connection a cluster node (or `parley admin --cluster`) keeps to NATS: it reconnects
 * forever, to whichever of the given servers answers, so that one NATS server's death is a
 * pause, not an outage.
 */

import { connect, type NatsConnection } from "./nats.ts";

export type { NatsConnection };

export interface ClusterConnectOptions {
  /** Shown in the NATS server's connection list (`parley-node-…`, `parley-admin`). */
  name: string;
  /** How long the first connection may take before the command gives up. */
  timeoutMs?: number;
}

/** Parses `nats://HOST:PORT[,…]` (the flag's form) into a list of server URLs. */
export function parseClusterUrls(text: string): string[] {
  const urls = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`"${url}" is not a NATS address (nats://HOST:PORT)`);
    }
    if (parsed.protocol !== "nats:" && parsed.protocol !== "tls:") {
      throw new Error(`"${url}" is not a NATS address (nats://HOST:PORT)`);
    }
  }
  if (urls.length === 0) throw new Error("The cluster needs at least one NATS address");
  return urls;
}

export async function connectCluster(
  servers: string[],
  opts: ClusterConnectOptions,
): Promise<NatsConnection> {
  return await connect({
    servers,
    name: opts.name,
    // In the operator's order: the node's own NATS server first (docs/cluster.md).
    noRandomize: true,
    timeout: opts.timeoutMs ?? 5000,
    // Never give up: a node without NATS serves nobody, and the servers come back.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    // A dead server is noticed within ~10 s even when its socket stays open.
    pingInterval: 5000,
    maxPingOut: 2,
  });
}
