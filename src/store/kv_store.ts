/** Opens the Deno KV file in the data dir and hands out the record stores on top of it. */

import { join } from "node:path";
import type { Clock } from "../clock/clock.ts";
import { KvBlockStore } from "./blocks.ts";
import { GroupCommitter } from "./committer.ts";
import { lockDataDir } from "./data_lock.ts";
import { KvFriendStore } from "./friends.ts";
import { KvGroupStore } from "./groups.ts";
import { KvInboxStore } from "./inbox.ts";
import { KvInvitationStore } from "./invitations.ts";
import { KvTokenStore } from "./tokens.ts";
import type { Store } from "./types.ts";
import { KvInviteStore } from "./invites.ts";
import { KvUserStore } from "./users.ts";
import { KvWorldStore } from "./world.ts";

export const KV_FILE = "parley.kv";

/** SQLite's companions of the KV file, made beside it while it is open. */
const SIDE_FILES = ["-wal", "-shm"];

/**
 * Makes the KV file, if there is none, readable by its owner only. SQLite gives the -wal and
 * -shm files it makes the mode of the database file, so they come out 0600 too (not 0644 under
 * the usual umask): they hold password hashes and queued messages.
 */
async function createPrivate(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  try {
    await Deno.writeFile(path, new Uint8Array(0), { createNew: true, mode: 0o600 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
}

/** Takes group and other access away from the KV file and its companions made by older runs. */
async function makePrivate(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  for (const file of [path, ...SIDE_FILES.map((s) => path + s)]) {
    let mode: number | null;
    try {
      mode = (await Deno.stat(file)).mode;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    if (mode !== null && (mode & 0o077) !== 0) await Deno.chmod(file, mode & 0o700);
  }
}

export interface StoreOptions {
  /** World room messages kept for users who log in later. */
  worldBacklog: number;
  /** Told how long each group commit took, in seconds. */
  onCommit?: (seconds: number) => void;
  /** The command that holds the data dir while the store is open, named to anyone refused. */
  owner?: string;
  /** The clock deferred writes wait on (the system's unless given). */
  clock?: Clock;
}

export async function openKvStore(
  dataDir: string,
  opts: StoreOptions = { worldBacklog: 100 },
): Promise<Store> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  // One writer at a time: the caches above the store assume this process makes every write.
  const lock = await lockDataDir(dataDir, opts.owner ?? "serve");
  const path = join(dataDir, KV_FILE);
  let kv: Deno.Kv;
  try {
    await createPrivate(path);
    kv = await Deno.openKv(path);
    await makePrivate(path);
  } catch (e) {
    lock.release();
    throw e;
  }
  const committer = new GroupCommitter(kv, opts.clock);
  if (opts.onCommit) committer.onCommit = opts.onCommit;
  const inbox = new KvInboxStore(kv, committer);
  await inbox.sweep();
  await inbox.load();
  const groups = new KvGroupStore(kv);
  await groups.sweep();
  return {
    users: await KvUserStore.open(kv),
    tokens: new KvTokenStore(kv, committer),
    invites: new KvInviteStore(kv),
    friends: new KvFriendStore(kv),
    groups,
    blocks: new KvBlockStore(kv),
    invitations: new KvInvitationStore(kv),
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
