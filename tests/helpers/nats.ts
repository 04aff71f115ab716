/**
 * A real three-server NATS JetStream cluster on loopback for the cluster tests, started once per
 * test file (a cluster takes seconds to form) and killed when the file's tests end. Outside CI a
 * machine without `nats-server` skips these tests and says why; in CI (CI=true, where .ci/run
 * installs Debian's nats-server) they fail instead.
 */

import { NatsCluster, natsServerAvailable } from "../../scripts/nats_cluster.ts";

export { NatsCluster };

const inCi = Deno.env.get("CI") === "true";
export const natsPresent = await natsServerAvailable();
if (!natsPresent && !inCi) {
  console.warn("Skipping the cluster tests: no nats-server on PATH (apt-get install nats-server)");
}

/** Deno.test options of every cluster test: skipped without nats-server outside CI. */
export const natsTestOptions = {
  ignore: !natsPresent && !inCi,
  // The NATS client keeps its own timers and sockets alive between calls.
  sanitizeOps: false,
  sanitizeResources: false,
};

let shared: Promise<NatsCluster> | null = null;

/** The file's cluster, started on first use and killed when the process ends. */
export function sharedNatsCluster(): Promise<NatsCluster> {
  if (!natsPresent) throw new Error("CI=true but there is no nats-server on PATH");
  if (!shared) {
    shared = NatsCluster.start();
    shared.then((c) => globalThis.addEventListener("unload", () => c.killNow()), () => {});
  }
  return shared;
}

/** A Deno.test on the file's shared cluster. */
export function natsTest(name: string, fn: (cluster: NatsCluster) => Promise<void>): void {
  Deno.test({ name, ...natsTestOptions, fn: async () => fn(await sharedNatsCluster()) });
}
