/**
 * The NATS store passes the store contract, on a real three-server JetStream cluster on
 * loopback: each test gets buckets and streams of its own (a fresh prefix), deleted after it.
 */

import { connectCluster } from "../../src/cluster/connect.ts";
import { destroyNatsStore, openNatsStore } from "../../src/store/nats/nats_store.ts";
import { natsTestOptions, sharedNatsCluster } from "../helpers/nats.ts";
import { storeContract, type StoreFactory } from "./contract/mod.ts";

const natsFactory: StoreFactory = async () => {
  const cluster = await sharedNatsCluster();
  const nc = await connectCluster(cluster.urls, { name: "parley-contract" });
  const prefix = `t${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  return {
    open: ({ clock, worldBacklog }) => openNatsStore(nc, { clock, worldBacklog, prefix }),
    dispose: async () => {
      await destroyNatsStore(nc, prefix);
      await nc.close();
    },
  };
};

storeContract("nats", natsFactory, natsTestOptions);
