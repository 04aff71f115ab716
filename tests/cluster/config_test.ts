/** `--cluster` and the `cluster` settings: what is taken, and what is refused with a sentence. */

import assert from "node:assert/strict";
import { parseClusterUrls } from "../../src/cluster/connect.ts";
import { applyConfig, ConfigError, defaultConfig } from "../../src/config/config.ts";
import { serveConfig } from "../../src/cli/serve.ts";
import { UsageError } from "../../src/terminal/usage.ts";

Deno.test("--cluster takes a comma list of nats:// addresses and sets cluster.nats", async () => {
  assert.deepEqual(parseClusterUrls("nats://a:4222, nats://b:4222,"), [
    "nats://a:4222",
    "nats://b:4222",
  ]);
  const { config } = await serveConfig(["--cluster", "nats://10.0.0.1:4222,tls://10.0.0.2:4222"]);
  assert.deepEqual(config.cluster.nats, ["nats://10.0.0.1:4222", "tls://10.0.0.2:4222"]);
  assert.equal(config.cluster.prefix, "parley");
  assert.deepEqual(defaultConfig().cluster.nats, [], "one server on Deno KV by default");
});

Deno.test("a bad --cluster or cluster setting is refused, naming it", async () => {
  await assert.rejects(
    serveConfig(["--cluster", "http://a:4222"]),
    (e) =>
      e instanceof UsageError &&
      /--cluster: "http:\/\/a:4222" is not a NATS address/.test(e.message),
  );
  await assert.rejects(serveConfig(["--cluster", " , "]), UsageError);
  assert.throws(
    () => applyConfig(defaultConfig(), { cluster: { nats: ["a:4222"] } }, "test"),
    (e) =>
      e instanceof ConfigError && /"cluster.nats" must be a list of NATS addresses/.test(e.message),
  );
  assert.throws(
    () => applyConfig(defaultConfig(), { cluster: { prefix: "a.b" } }, "test"),
    (e) => e instanceof ConfigError && /"cluster.prefix"/.test(e.message),
  );
  assert.throws(
    () => applyConfig(defaultConfig(), { cluster: { replicas: 7 } }, "test"),
    ConfigError,
  );
});
