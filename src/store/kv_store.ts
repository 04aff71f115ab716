/** Opens the Deno KV file in the data dir and hands out the record stores on top of it. */

import { join } from "node:path";
import { GroupCommitter } from "./committer.ts";
import { lockDataDir } from "./data_lock.ts";
import { KvFriendStore } from "./friends.ts";
import { KvGroupStore } from "./groups.ts";
import { KvInboxStore } from "./inbox.ts";
import { KvTokenStore } from "./tokens.ts";
import type { Store } from "./types.ts";
import { KvInviteStore } from "./invites.ts";
import { KvUserStore } from "./users.ts";
import { KvWorldStore } from "./world.ts";

export const KV_FILE = "parley.kv";

export interface StoreOptions {
  /** World room messages kept for users who log in later. */
  worldBacklog: number;
  /** Told how long each group commit took, in seconds. */
  onCommit?: (seconds: number) => void;
  /** The command that holds the data dir while the store is open, named to anyone refused. */
  owner?: string;
}

export async function openKvStore(
  dataDir: string,
  opts: StoreOptions = { worldBacklog: 100 },
): Promise<Store> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  // One writer at a time: the caches above the store assume this process makes every write.
  const lock = await lockDataDir(dataDir, opts.owner ?? "serve");
  const kv = await Deno.openKv(join(dataDir, KV_FILE)).catch((e) => {
    lock.release();
    throw e;
  });
  const committer = new GroupCommitter(kv);
  if (opts.onCommit) committer.onCommit = opts.onCommit;
  const inbox = new KvInboxStore(kv, committer);
  await inbox.sweep();
  return {
    users: await KvUserStore.open(kv),
    tokens: new KvTokenStore(kv),
    invites: new KvInviteStore(kv),
    friends: new KvFriendStore(kv),
    groups: new KvGroupStore(kv),
    inbox,
    world: await KvWorldStore.open(kv, committer, opts.worldBacklog),
    ping: async () => {
      await kv.get(["health"]);
    },
    close: async () => {
      await inbox.removalsDone();
      await committer.close();
      kv.close();
      lock.release();
    },
  };
}
