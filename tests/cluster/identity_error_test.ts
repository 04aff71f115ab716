/** A node whose key file is not the cluster's says so, not that JetStream did not answer. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { randomBytes } from "../../src/crypto/keys.ts";
import { silentLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { writeIdentity } from "../../src/store/identity.ts";
import { withCluster } from "../helpers/cluster.ts";
import { natsTest } from "../helpers/nats.ts";
import { testConfig } from "../helpers/server.ts";

natsTest(
  "a node with another identity key file refuses to start, saying which file",
  (nats) =>
    withCluster(nats, async (c) => {
      const dataDir = join(c.dir, "stranger");
      await Deno.mkdir(dataDir, { recursive: true });
      await writeIdentity(dataDir, randomBytes(32));
      const config = testConfig(dataDir, {
        cluster: { nats: nats.urls, prefix: c.prefix, nodeTimeoutMs: 3000 },
      });
      await assert.rejects(startServer(config, silentLogger), (e: Error) => {
        assert.match(e.message, /^The identity key in \S+identity\.key is not the cluster's/);
        assert.doesNotMatch(e.message, /did not answer/);
        return true;
      });
    }, 1),
);
