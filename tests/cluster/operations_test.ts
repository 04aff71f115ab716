/**
 * A node's /healthz and /metrics: its NATS link, its peers and the cluster's figures; a node
 * whose NATS server is gone says so (503) and serves again once it is back.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { withCluster } from "../helpers/cluster.ts";
import { NatsCluster, natsTest, natsTestOptions } from "../helpers/nats.ts";
import { testConfig } from "../helpers/server.ts";

const HTTP_ON = { http: { enabled: true, port: 0 } };

async function until(ok: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!await ok()) {
    if (Date.now() > end) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

natsTest(
  "cluster: /healthz names the node's NATS link and peers; /metrics counts the cluster",
  async (nats) => {
    await withCluster(
      nats,
      async (c) => {
        const http = c.servers.map((s) => s!.http!.port);
        await c.user(0, "alice");
        await c.user(2, "bob");
        await until(async () => {
          const h = JSON.parse((await get(http[1], "/healthz")).text);
          return h.cluster?.peers === 2;
        }, "node 1 hears both others");
        const health = await get(http[1], "/healthz");
        assert.equal(health.status, 200);
        const body = JSON.parse(health.text);
        assert.equal(body.status, "ok");
        assert.equal(body.cluster.nats, "connected");
        assert.match(body.cluster.server, /^127\.0\.0\.1:\d+$/);
        const metrics = (await get(http[1], "/metrics")).text;
        assert.match(metrics, /^parley_cluster_nodes 3$/m);
        assert.match(
          metrics,
          /^parley_cluster_users_online 2$/m,
          "alice and bob, on the other nodes",
        );
        assert.match(metrics, /^parley_users_online 0$/m, "none on this node");
        assert.match(metrics, /^parley_nats_connected 1$/m);
      },
      3,
      HTTP_ON,
    );
  },
);

Deno.test({
  name:
    "cluster: a node whose NATS server is gone answers 503 nats_unavailable, and serves again once it is back",
  ...natsTestOptions,
  async fn() {
    const nats = await NatsCluster.start({ size: 1 });
    const dir = await Deno.makeTempDir({ prefix: "parley-cluster-ops-" });
    try {
      const config = testConfig(join(dir, "node"), {
        ...HTTP_ON,
        cluster: { nats: nats.urls, prefix: "ops", replicas: 1 },
      });
      const server = await startServer(config, silentLogger, { strictInvariants: true });
      try {
        const port = server.http!.port;
        assert.equal((await get(port, "/healthz")).status, 200);
        await nats.kill(0);
        await until(async () => (await get(port, "/healthz")).status === 503, "503");
        assert.equal(JSON.parse((await get(port, "/healthz")).text).status, "nats_unavailable");
        await nats.restart(0);
        await until(async () => (await get(port, "/healthz")).status === 200, "200 again");
        assert.match((await get(port, "/metrics")).text, /^parley_nats_reconnects_total 1$/m);
      } finally {
        await server.close();
      }
    } finally {
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
