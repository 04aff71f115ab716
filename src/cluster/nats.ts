/**
 * The one door to the NATS client packages (npm, pinned in deno.json): the cluster store and
 * hub import NATS from here, so the layer table can keep every other package out of src/.
 * JetStream's own `Heartbeat` shadows the core one, which Parley does not use.
 */

export * from "@nats-io/transport-node";
export * from "@nats-io/kv";
export * from "@nats-io/jetstream";
export type { Heartbeat } from "@nats-io/jetstream";
