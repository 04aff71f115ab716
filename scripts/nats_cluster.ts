/**
 * Three (or N) `nats-server` processes forming one JetStream cluster on 127.0.0.1, each with its
 * own store dir: what the cluster tests and `deno task bench --cluster` run Parley on, and what
 * `deno task nats` starts by hand (docs/cluster.md). Debian's `nats-server` 2.9 is enough.
 *
 *   deno task nats [--dir ./nats-data] [--port 4222]   # ports 4222-4224, routes 6222-6224
 */

import { freePort } from "./free_port.ts";
import { join } from "node:path";
import { parseArgs } from "node:util";

export interface NatsNode {
  name: string;
  /** The client URL, nats://127.0.0.1:PORT. */
  url: string;
  clientPort: number;
  routePort: number;
  storeDir: string;
  confFile: string;
  /** The HTTP monitoring port (/varz, /connz), or null when not asked for. */
  monitorPort: number | null;
  process: Deno.ChildProcess | null;
}

export interface NatsClusterOptions {
  /** Where the store dirs and config files go; a fresh temp dir if unset. */
  dir?: string;
  size?: number;
  /** The first client port; free ports are picked when unset. */
  basePort?: number;
  /** The first route port (basePort + 2000 when basePort is given). */
  baseRoutePort?: number;
  /** Forward the servers' logs to this process's stderr. */
  verbose?: boolean;
  /** Serve NATS's HTTP monitoring on a free loopback port per server (the bench reads it). */
  monitor?: boolean;
}

export const NATS_SERVER = Deno.env.get("NATS_SERVER") ?? "nats-server";

/** Whether a nats-server binary can be run here. */
export async function natsServerAvailable(): Promise<boolean> {
  try {
    const out = await new Deno.Command(NATS_SERVER, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

export class NatsCluster {
  readonly nodes: NatsNode[];
  readonly #verbose: boolean;
  readonly #ownDir: boolean;

  private constructor(readonly dir: string, nodes: NatsNode[], verbose: boolean, ownDir: boolean) {
    this.nodes = nodes;
    this.#verbose = verbose;
    this.#ownDir = ownDir;
  }

  /** The client URLs, as `--cluster` takes them. */
  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** Starts every server and resolves once JetStream has a meta leader (the cluster formed). */
  static async start(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
    const size = opts.size ?? 3;
    const ownDir = opts.dir === undefined;
    const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "parley-nats-" });
    await Deno.mkdir(dir, { recursive: true });
    const nodes: NatsNode[] = [];
    for (let i = 0; i < size; i++) {
      const clientPort = opts.basePort !== undefined ? opts.basePort + i : freePort();
      const routePort = opts.baseRoutePort !== undefined
        ? opts.baseRoutePort + i
        : opts.basePort !== undefined
        ? opts.basePort + 2000 + i
        : freePort();
      const name = `n${i + 1}`;
      nodes.push({
        name,
        url: `nats://127.0.0.1:${clientPort}`,
        clientPort,
        routePort,
        storeDir: join(dir, name),
        confFile: join(dir, `${name}.conf`),
        monitorPort: opts.monitor ? freePort() : null,
        process: null,
      });
    }
    const cluster = new NatsCluster(dir, nodes, opts.verbose ?? false, ownDir);
    for (const node of nodes) await Deno.writeTextFile(node.confFile, cluster.#conf(node));
    try {
      for (const node of nodes) cluster.#spawn(node);
      await cluster.ready();
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  #conf(node: NatsNode): string {
    const routes = this.nodes.filter((n) => n !== node)
      .map((n) => `    "nats-route://127.0.0.1:${n.routePort}"`).join("\n");
    // One server alone is no cluster: JetStream runs standalone (streams with one replica).
    const cluster = this.nodes.length === 1 ? [] : [
      `cluster {`,
      `  name: parley`,
      `  listen: "127.0.0.1:${node.routePort}"`,
      `  routes: [`,
      routes,
      `  ]`,
      `}`,
    ];
    return [
      `server_name: ${node.name}`,
      `listen: "127.0.0.1:${node.clientPort}"`,
      // Room for a whole image in one message (Parley's default limit is 2 MiB).
      `max_payload: 8MB`,
      ...(node.monitorPort !== null ? [`http: "127.0.0.1:${node.monitorPort}"`] : []),
      `jetstream {`,
      `  store_dir: "${node.storeDir}"`,
      `}`,
      ...cluster,
      "",
    ].join("\n");
  }

  #spawn(node: NatsNode): void {
    const process = new Deno.Command(NATS_SERVER, {
      args: ["-c", node.confFile],
      stdin: "null",
      stdout: this.#verbose ? "inherit" : "null",
      stderr: this.#verbose ? "inherit" : "null",
    }).spawn();
    node.process = process;
    // A server that ends by itself (its port taken, a bad config) is not ready, whoever answers
    // on its port.
    process.status.then((status) => {
      if (node.process === process) this.#exited.set(node.name, status.code);
    });
  }

  readonly #exited = new Map<string, number>();

  /**
   * Waits until every running server answers, JetStream has a meta leader, and a stream with a
   * replica on each running server can be placed (a meta leader that does not yet count a peer
   * as current refuses that: "no suitable peers for placement").
   */
  async ready(timeoutMs = 30_000): Promise<void> {
    const { connect } = await import("@nats-io/transport-node");
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    for (const node of this.nodes.filter((n) => n.process)) {
      while (true) {
        const code = this.#exited.get(node.name);
        if (code !== undefined) {
          throw new Error(
            `NATS server ${node.name} exited (code ${code}); is port ${node.clientPort} or ${node.routePort} taken?`,
          );
        }
        if (Date.now() > deadline) {
          throw new Error(`NATS server ${node.name} did not become ready: ${last}`);
        }
        try {
          const nc = await connect({ servers: node.url, reconnect: false, timeout: 1000 });
          try {
            const jsm = await jetstreamManager(nc, { timeout: 2000 });
            await jsm.getAccountInfo();
            break;
          } finally {
            await nc.close();
          }
        } catch (e) {
          last = e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    const running = this.nodes.filter((n) => n.process);
    const name = `ready_probe_${crypto.randomUUID().slice(0, 8)}`;
    while (true) {
      try {
        const nc = await connect({ servers: running[0].url, reconnect: false, timeout: 1000 });
        try {
          const jsm = await jetstreamManager(nc, { timeout: 5000 });
          await jsm.streams.add({
            name,
            subjects: [`${name}.x`],
            num_replicas: running.length,
          });
          await jsm.streams.delete(name);
          return;
        } finally {
          await nc.close();
        }
      } catch (e) {
        last = e;
        if (Date.now() > deadline) {
          throw new Error(`The NATS cluster cannot place a stream on every server: ${last}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** SIGKILLs one server (its store dir stays, as after a crash). */
  async kill(index: number): Promise<void> {
    const p = this.nodes[index].process;
    if (!p) return;
    this.nodes[index].process = null;
    try {
      p.kill("SIGKILL");
    } catch { /* already gone */ }
    await p.status;
  }

  /** Starts a killed server again over its store dir; it catches up from the others. */
  async restart(index: number): Promise<void> {
    if (this.nodes[index].process) return;
    this.#exited.delete(this.nodes[index].name);
    this.#spawn(this.nodes[index]);
    await this.ready();
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.kill(i);
    if (this.#ownDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Kills the servers without waiting (an `unload` handler: nothing async runs there). */
  killNow(): void {
    for (const node of this.nodes) {
      try {
        node.process?.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dir: { type: "string", default: "./nats-data" },
      port: { type: "string", default: "4222" },
    },
  });
  const port = Number(values.port);
  const cluster = await NatsCluster.start({ dir: values.dir, basePort: port, verbose: true });
  console.error(`NATS JetStream cluster ready: --cluster ${cluster.urls.join(",")}`);
  console.error("Ctrl-C stops it; the store dirs stay in " + values.dir);
  const stop = () => cluster.killNow();
  Deno.addSignalListener("SIGINT", () => {
    stop();
    Deno.exit(0);
  });
  await new Promise(() => {});
}
