/** The memory store passes the store contract. */

import { newMemoryData, openMemoryStore } from "../../src/store/memory/memory_store.ts";
import { storeContract, type StoreFactory } from "./contract/mod.ts";

const memoryFactory: StoreFactory = () => {
  const data = newMemoryData();
  return Promise.resolve({
    open: (opts) => Promise.resolve(openMemoryStore(data, opts)),
    dispose: () => Promise.resolve(),
  });
};

storeContract("memory", memoryFactory);
