/**
 * The NATS store passes the store contract, on a real three-server JetStream cluster on
 * loopback: each test gets buckets and streams of its own (a fresh prefix), deleted after it.
 *
 * One replica per stream here: the contract is about what the store does, and making a dozen
 * three-replica streams per test costs a minute of the suite. What three replicas change (the
 * compare-and-set across a cluster, nodes racing) is tested with three in nats_two_nodes_test.ts,
 * nats_inbox_two_nodes_test.ts and tests/cluster/. PARLEY_CONTRACT_REPLICAS=3 runs it with three.
 */

import { connectCluster } from "../../src/cluster/connect.ts";
import { destroyNatsStore, openNatsStore } from "../../src/store/nats/nats_store.ts";
import { natsTestOptions, sharedNatsCluster } from "../helpers/nats.ts";
import { storeContract, type StoreFactory } from "./contract/mod.ts";

const REPLICAS = Number(Deno.env.get("PARLEY_CONTRACT_REPLICAS") ?? "1");

const natsFactory: StoreFactory = async () => {
  const cluster = await sharedNatsCluster();
  const nc = await connectCluster(cluster.urls, { name: "parley-contract" });
  const prefix = `t${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  return {
    open: ({ clock, worldBacklog }) =>
      openNatsStore(nc, { clock, worldBacklog, prefix, replicas: REPLICAS }),
    dispose: async () => {
      await destroyNatsStore(nc, prefix);
      await nc.close();
    },
  };
};

storeContract("nats", natsFactory, natsTestOptions);
