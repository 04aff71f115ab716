/** The KV store passes the store contract, on a real KV file in a temp dir. */

import { join } from "node:path";
import { openKvStore } from "../../src/store/kv_store.ts";
import { storeContract, type StoreFactory } from "./contract/mod.ts";

const kvFactory: StoreFactory = async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-contract-" });
  return {
    open: ({ clock, worldBacklog }) => openKvStore(join(dir, "data"), { clock, worldBacklog }),
    dispose: () => Deno.remove(dir, { recursive: true }),
  };
};

storeContract("kv", kvFactory);
