/**
 * A Parley cluster for tests: N real servers in this process, each a node of one NATS
 * JetStream cluster (tests/helpers/nats.ts), with a fresh prefix per cluster so that tests on
 * the same NATS servers never see each other's data. Clients connect to the node named.
 */

import { join } from "node:path";
import { type ConnectOptions, ParleyClient } from "../../src/client/client.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import type { Config } from "../../src/config/config.ts";
import { silentLogger } from "../../src/server/log.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { connectCluster } from "../../src/cluster/connect.ts";
import { destroyNatsStore, openNatsStore } from "../../src/store/nats/nats_store.ts";
import type { Store } from "../../src/store/types.ts";
import type { NatsCluster } from "./nats.ts";
import { testConfig } from "./server.ts";

/** A prefix no other test uses. */
export function freshPrefix(): string {
  return `c${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
}

export class ParleyCluster {
  readonly clients: ParleyClient[] = [];
  readonly knownHosts: KnownHosts;
  readonly servers: (RunningServer | null)[];

  private constructor(
    readonly nats: NatsCluster,
    readonly dir: string,
    readonly prefix: string,
    readonly configs: Config[],
    servers: RunningServer[],
  ) {
    this.servers = servers;
    this.knownHosts = new KnownHosts(join(dir, "client", "known_hosts"));
  }

  /** `prefix`: the store's, when it holds one already (a restored backup); else a fresh one. */
  static async start(
    nats: NatsCluster,
    nodes = 3,
    patch: Record<string, unknown> = {},
    prefix = freshPrefix(),
  ): Promise<ParleyCluster> {
    const dir = await Deno.makeTempDir({ prefix: "parley-cluster-" });
    const configs: Config[] = [];
    const servers: RunningServer[] = [];
    try {
      for (let i = 0; i < nodes; i++) {
        const config = testConfig(join(dir, `node${i}`), {
          ...patch,
          // Each node gets a different NATS server first, as an operator would spread them.
          cluster: {
            nats: [
              ...nats.urls.slice(i % nats.urls.length),
              ...nats.urls.slice(0, i % nats.urls.length),
            ],
            prefix,
            nodeTimeoutMs: 3000,
          },
        });
        configs.push(config);
        servers.push(await startServer(config, silentLogger, { strictInvariants: true }));
      }
    } catch (e) {
      for (const s of servers) await s.close();
      throw e;
    }
    return new ParleyCluster(nats, dir, prefix, configs, servers);
  }

  port(node: number): number {
    const s = this.servers[node];
    if (!s) throw new Error(`Node ${node} is stopped`);
    return s.addr.port;
  }

  async connect(node: number, extra: Partial<ConnectOptions> = {}): Promise<ParleyClient> {
    const client = await ParleyClient.connect({
      host: "127.0.0.1",
      port: this.port(node),
      knownHosts: this.knownHosts,
      ...extra,
    });
    this.clients.push(client);
    return client;
  }

  /** A client of `node` that has registered (through that node) and logged in as `name`. */
  async user(node: number, name: string, password = "password-" + name): Promise<ParleyClient> {
    const client = await this.connect(node);
    await client.register(name, password);
    await client.login(name, password);
    return client;
  }

  /** A client of `node` logged in as an existing user. */
  async login(node: number, name: string, password = "password-" + name): Promise<ParleyClient> {
    const client = await this.connect(node);
    await client.login(name, password);
    return client;
  }

  /** Stops one node as an operator would (clients are told, then cut off). */
  async stopNode(node: number): Promise<void> {
    const s = this.servers[node];
    this.servers[node] = null;
    await s?.close();
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all(this.clients.map((c) => c.closed));
    for (const s of this.servers) await s?.close();
    const nc = await connectCluster(this.nats.urls, { name: "parley-test-cleanup" });
    try {
      await destroyNatsStore(nc, this.prefix);
    } finally {
      await nc.close();
    }
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** Runs `fn` on a fresh cluster of `nodes` Parley nodes, stopped afterwards. */
export async function withCluster(
  nats: NatsCluster,
  fn: (c: ParleyCluster) => Promise<void>,
  nodes = 3,
  patch: Record<string, unknown> = {},
): Promise<void> {
  const c = await ParleyCluster.start(nats, nodes, patch);
  try {
    await fn(c);
  } finally {
    await c.stop();
  }
}

/** Runs `fn` on the NATS store under `prefix`, opened as a node opens it, closed afterwards. */
export async function withNatsStore<T>(
  nats: NatsCluster,
  prefix: string,
  fn: (store: Store) => Promise<T>,
): Promise<T> {
  const nc = await connectCluster(nats.urls, { name: "parley-test" });
  try {
    const store = await openNatsStore(nc, { prefix, worldBacklog: 100 });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  } finally {
    await nc.close();
  }
}
