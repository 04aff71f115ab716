/**
 * `parley admin restore --cluster FILE` with a data dir's backup (format `parley-backup`): a
 * single server's data moved into a cluster's empty prefix, so that a community that outgrew
 * one machine keeps its accounts, tokens, friends, groups, queues and identity key.
 *
 * The file goes through the data dir's own restore first (restore.ts: every line checked, the
 * end line counted, expired token entries dropped) into a private temp dir; the store there is
 * opened once as the server opens it (its schema upgraded, half-written groups and blobs swept),
 * then read whole (src/store/kv_export.ts) and written into the cluster's prefix
 * (src/store/nats/import.ts). The temp dir goes afterwards, whatever happened; a failed write
 * deletes what it made under the prefix, so a refused or failed migration changes nothing.
 */

import { basename, dirname, join, resolve } from "node:path";
import { KvStoreImage } from "../store/kv_export.ts";
import { openKvStore } from "../store/kv_store.ts";
import { importStore, type ImportTally, requireEmpty } from "../store/nats/import.ts";
import { parseJson } from "./backup_format.ts";
import { storeContext, withNats } from "./cluster.ts";
import type { AdminContext } from "./command.ts";
import { exists, kvPath, readIdentity } from "./data_dir.ts";
import { lines, restoreDataDir } from "./restore.ts";

export interface MigrateCounts extends ImportTally {
  prefix: string;
  /** The identity key's fingerprint, as clients show it; null when the backup held none. */
  fingerprint: string | null;
  /** Token entries that had expired since the backup (left out). */
  expired: number;
}

/** Whether the file at `path` is a data dir's backup (its header's format). */
export async function isDataDirBackup(path: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return false; // the restore that follows says why it cannot read it
  }
  try {
    for await (const [, text] of lines(file, path)) {
      try {
        return parseJson(text).format === "parley-backup";
      } catch {
        return false;
      }
    }
    return false;
  } finally {
    try {
      file.close();
    } catch {
      // The readable stream closed it already.
    }
  }
}

export async function migrateIntoCluster(
  ctx: AdminContext,
  file: string,
): Promise<MigrateCounts> {
  const cluster = ctx.cluster!;
  const path = resolve(file);
  if (!await exists(path)) throw new Error(`There is no backup file "${path}"`);
  return await withNats(cluster, "restore", async (nc) => {
    const store = await storeContext(nc, ctx, cluster, false);
    // Before the slow part: a prefix in use is refused at once.
    await requireEmpty(store);
    const work = await workDir(path);
    try {
      const dataDir = join(work, "data");
      const restored = await restoreDataDir(path, dataDir);
      const kvStore = await openKvStore(dataDir, {
        worldBacklog: ctx.config.world.backlog,
        owner: "admin restore",
      });
      await kvStore.close();
      const identity = await readIdentity(dataDir);
      const kv = await Deno.openKv(kvPath(dataDir));
      try {
        const tally = await importStore(store, new KvStoreImage(kv), identity?.seed ?? null);
        return {
          ...tally,
          prefix: store.prefix,
          fingerprint: identity?.fingerprint ?? null,
          expired: restored.expired,
        };
      } finally {
        kv.close();
      }
    } finally {
      // A failure here must not hide the migration's own error; the path says what to remove.
      await Deno.remove(work, { recursive: true }).catch((e) =>
        console.error(`parley: could not remove "${work}": ${(e as Error).message}`)
      );
    }
  });
}

/**
 * A private dir (mode 0700: it holds the password hashes and the identity key while it exists)
 * for the restored copy of the store: beside the backup, on the disk that held it whole, rather
 * than in a temp dir that may be memory; the system's temp dir if that one is not writable.
 */
async function workDir(backup: string): Promise<string> {
  try {
    return await Deno.makeTempDir({ dir: dirname(backup), prefix: `.${basename(backup)}.` });
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    return await Deno.makeTempDir({ prefix: "parley-migrate-" });
  }
}
