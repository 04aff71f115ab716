/** Opens the Deno KV file in the data dir and hands out the record stores on top of it. */

import { join } from "node:path";
import { KvTokenStore } from "./tokens.ts";
import type { Store } from "./types.ts";
import { KvUserStore } from "./users.ts";

export const KV_FILE = "parley.kv";

export async function openKvStore(dataDir: string): Promise<Store> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const kv = await Deno.openKv(join(dataDir, KV_FILE));
  return {
    users: new KvUserStore(kv),
    tokens: new KvTokenStore(kv),
    close: () => kv.close(),
  };
}
