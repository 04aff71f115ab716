/**
 * Parley cluster nodes as real `parley serve --cluster` child processes (so that a test can
 * SIGKILL one), on one NATS cluster with a fresh prefix, each on its own loopback port. A killed
 * node is started again on the same port, as an operator's service manager would.
 */

import { join } from "node:path";
import { connectCluster } from "../../src/cluster/connect.ts";
import { destroyNatsStore } from "../../src/store/nats/nats_store.ts";
import { ServerProcess } from "./cli.ts";
import type { NatsCluster } from "./nats.ts";

export class NodeProcesses {
  readonly #nodes: (ServerProcess | null)[];
  readonly #ports: number[];
  /** The logs of nodes that were stopped, for a failing test to show. */
  readonly #pastLogs: string[] = [];

  private constructor(
    readonly nats: NatsCluster,
    readonly dir: string,
    readonly prefix: string,
    readonly configFile: string,
    nodes: ServerProcess[],
  ) {
    this.#nodes = nodes;
    this.#ports = nodes.map((n) => n.port);
  }

  /**
   * Starts `count` nodes at once. `nodeTimeoutMs` is how long the others wait before a silent
   * node's users count as offline.
   */
  static async start(
    nats: NatsCluster,
    count = 3,
    opts: { nodeTimeoutMs?: number } = {},
  ): Promise<NodeProcesses> {
    const dir = await Deno.makeTempDir({ prefix: "parley-nodes-" });
    const prefix = `f${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
    const configFile = join(dir, "config.json");
    await Deno.writeTextFile(
      configFile,
      JSON.stringify({
        accounts: {
          scrypt: { N: 1024, r: 8, p: 1 },
          registerPerIp: 1_000_000,
          registerPerHour: 1_000_000,
        },
        limits: {
          requestRate: 1_000_000,
          requestBurst: 1_000_000,
          preLoginRequestRate: 1_000_000,
          preLoginRequestBurst: 1_000_000,
        },
        cluster: { prefix, nodeTimeoutMs: opts.nodeTimeoutMs ?? 3000 },
      }),
    );
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => NodeProcesses.#spawn(nats, dir, configFile, i, 0)),
    );
    const nodes = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      for (const n of nodes) await n.stop("SIGKILL");
      throw (failed as PromiseRejectedResult).reason;
    }
    return new NodeProcesses(nats, dir, prefix, configFile, nodes);
  }

  /** Node `i` lists the NATS servers from the i-th on, as an operator would spread them. */
  static #spawn(
    nats: NatsCluster,
    dir: string,
    configFile: string,
    i: number,
    port: number,
  ): Promise<ServerProcess> {
    const k = i % nats.urls.length;
    const urls = [...nats.urls.slice(k), ...nats.urls.slice(0, k)];
    return ServerProcess.start(join(dir, `node${i}`), configFile, port, [
      "--cluster",
      urls.join(","),
    ]);
  }

  get count(): number {
    return this.#ports.length;
  }

  port(i: number): number {
    return this.#ports[i];
  }

  node(i: number): ServerProcess | null {
    return this.#nodes[i];
  }

  /** SIGKILLs node `i`: no goodbye to its clients, the other nodes, or NATS. */
  async kill(i: number): Promise<void> {
    const node = this.#nodes[i];
    this.#nodes[i] = null;
    await node?.stop("SIGKILL");
    if (node) this.#pastLogs.push(`node ${i} (killed):\n${node.out.text}`);
  }

  /** Every node's log so far, killed ones included. */
  logs(): string {
    return [
      ...this.#pastLogs,
      ...this.#nodes.map((n, i) => n ? `node ${i}:\n${n.out.text}` : ""),
    ].join("\n");
  }

  /** Starts a killed node again on its port (a new node id, the same address for clients). */
  async restart(i: number): Promise<void> {
    if (this.#nodes[i]) return;
    this.#nodes[i] = await NodeProcesses.#spawn(
      this.nats,
      this.dir,
      this.configFile,
      i,
      this.#ports[i],
    );
  }

  /** Stops every node, deletes the prefix's streams and buckets, and the temp dir. */
  async stop(): Promise<void> {
    for (let i = 0; i < this.#nodes.length; i++) {
      const node = this.#nodes[i];
      this.#nodes[i] = null;
      await node?.stop("SIGKILL");
    }
    const nc = await connectCluster(this.nats.urls, { name: "parley-test-cleanup" });
    try {
      await destroyNatsStore(nc, this.prefix);
    } finally {
      await nc.close();
    }
    await Deno.remove(this.dir, { recursive: true });
  }
}
