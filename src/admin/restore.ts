/**
 * `parley admin restore FILE`: a backup back into an empty or new data dir.
 *
 * The data dir's lock is held throughout, so no server starts on it meanwhile. The store is
 * built in a temp dir inside the data dir while every line is checked; only when the whole
 * file has been read and written do the identity key and then the KV file move into place
 * (renames within one directory). A bad line stops the restore with its line number and the
 * temp dir is deleted, so there is never a half-restored store for a server to start on. A
 * restore killed midway leaves only its temp dir, which the next restore clears.
 */

import { join, resolve } from "node:path";
import { serialize } from "node:v8";
import { IDENTITY_FILE, writeIdentity } from "../store/identity.ts";
import { LOCK_FILE, lockDataDir } from "../store/data_lock.ts";
import { KV_FILE } from "../store/kv_store.ts";
import { isSchemaKey, PREFIX } from "../store/kv_keys.ts";
import { SCHEMA_VERSION } from "../store/schema.ts";
import type { AdminCommand } from "./command.ts";
import { parseHeader, parseLine } from "./backup_format.ts";
import { exists, KV_SIDE_FILES, readIdentity } from "./data_dir.ts";
import { restoreCluster } from "./cluster_backup.ts";
import { isDataDirBackup, type MigrateCounts, migrateIntoCluster } from "./migrate.ts";
import { plural } from "./text.ts";

/** KV allows 1000 mutations, 800 KiB and 80 KiB of keys per atomic commit; stay below. */
const BATCH_MUTATIONS = 900;
const BATCH_BYTES = 700 * 1024;
const BATCH_KEY_BYTES = 64 * 1024;
/** KV's own caps on one entry, checked per line so that an error names its line. */
const MAX_KEY_BYTES = 2048;
const MAX_VALUE_BYTES = 65536;
/** No backup line comes near this (values are at most 64 KiB); past it the file is not one. */
const MAX_LINE_CHARS = 4 * 1024 * 1024;
const TEMP_PREFIX = ".restore-";

/** A problem with the backup file, at a line. */
export class BackupFileError extends Error {
  override name = "BackupFileError";

  constructor(file: string, line: number, problem: string) {
    super(`${file}, line ${line}: ${problem}; nothing was restored`);
  }
}

/** Lines of a UTF-8 text stream, numbered from 1. */
export async function* lines(file: Deno.FsFile, path: string): AsyncGenerator<[number, string]> {
  let rest = "";
  let n = 0;
  const text = file.readable.pipeThrough(new TextDecoderStream("utf-8", { fatal: true }));
  try {
    for await (const chunk of text) {
      rest += chunk;
      let start = 0;
      for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n", start)) {
        yield [++n, rest.slice(start, nl)];
        start = nl + 1;
      }
      rest = rest.slice(start);
      if (rest.length > MAX_LINE_CHARS) {
        throw new BackupFileError(path, n + 1, "the line is too long for a Parley backup");
      }
    }
  } catch (e) {
    if (e instanceof TypeError) throw new BackupFileError(path, n + 1, "it is not UTF-8 text");
    throw e;
  }
  if (rest !== "") yield [++n, rest];
}

/** Gathers mutations into atomic commits within KV's limits. */
class Batcher {
  #op: Deno.AtomicOperation;
  #count = 0;
  #bytes = 0;
  #keyBytes = 0;

  constructor(private readonly kv: Deno.Kv) {
    this.#op = kv.atomic();
  }

  async set(key: Deno.KvKey, value: unknown, keyBytes: number, valueBytes: number, ttl?: number) {
    if (
      this.#count + 1 > BATCH_MUTATIONS || this.#bytes + keyBytes + valueBytes > BATCH_BYTES ||
      this.#keyBytes + keyBytes > BATCH_KEY_BYTES
    ) await this.flush();
    this.#op.set(key, value, ttl === undefined ? undefined : { expireIn: ttl });
    this.#count++;
    this.#bytes += keyBytes + valueBytes;
    this.#keyBytes += keyBytes;
  }

  async flush(): Promise<void> {
    if (this.#count === 0) return;
    const result = await this.#op.commit();
    if (!result.ok) throw new Error("A KV commit failed while restoring");
    this.#op = this.kv.atomic();
    this.#count = this.#bytes = this.#keyBytes = 0;
  }
}

const encoder = new TextEncoder();

/** A key's size as KV encodes it: a tag per part, zero bytes escaped, strings terminated. */
function keySize(key: Deno.KvKey): number {
  return key.reduce<number>((n, part) => {
    if (typeof part === "number") return n + 9;
    if (typeof part === "boolean") return n + 1;
    if (typeof part === "bigint") return n + 2 + part.toString(16).length;
    const bytes = part instanceof Uint8Array ? part : encoder.encode(String(part));
    return n + 2 + bytes.length + bytes.filter((b) => b === 0).length;
  }, 0);
}

export interface RestoreCounts {
  entries: number;
  users: number;
  groups: number;
  queued: number;
  expired: number;
  fingerprint: string | null;
}

/** Reads `path` into the KV file at `kvFile` and writes the identity key into `dir`. */
async function load(path: string, kvFile: string, dir: string): Promise<RestoreCounts> {
  const counts: RestoreCounts = {
    entries: 0,
    users: 0,
    groups: 0,
    queued: 0,
    expired: 0,
    fingerprint: null,
  };
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw new Error(`Cannot read the backup "${path}": ${(e as Error).message}`);
  }
  const kv = await Deno.openKv(kvFile);
  try {
    const batch = new Batcher(kv);
    let seed: Uint8Array | null = null;
    let ended = false;
    let last = 0;
    for await (const [n, text] of lines(file, path)) {
      last = n;
      const bad = (problem: string) => new BackupFileError(path, n, problem);
      if (n === 1) {
        try {
          parseHeader(text);
        } catch (e) {
          if (text.includes('"parley-cluster-backup"')) {
            throw bad("it is a cluster's backup (made with --cluster); restore it with --cluster");
          }
          throw bad((e as Error).message);
        }
        continue;
      }
      if (ended) throw bad("there is more after the end line");
      let line;
      try {
        line = parseLine(text);
      } catch (e) {
        throw bad((e as Error).message);
      }
      if (line.kind === "identity") {
        if (seed) throw bad("a second identity key");
        seed = line.seed;
      } else if (line.kind === "end") {
        if (line.entries !== counts.entries + counts.expired) {
          throw bad(
            `the end line counts ${line.entries} entries, the file holds ` +
              `${counts.entries + counts.expired}`,
          );
        }
        ended = true;
      } else {
        const kb = keySize(line.key);
        if (kb > MAX_KEY_BYTES) throw bad("the key is longer than KV allows");
        const vb = serialize(line.value).length;
        if (vb > MAX_VALUE_BYTES) throw bad("the value is larger than KV allows");
        let ttl: number | undefined;
        if (line.expiresAt !== undefined) {
          ttl = line.expiresAt - Date.now();
          if (ttl <= 0) {
            counts.expired++;
            continue;
          }
        }
        if (isSchemaKey(line.key) && (line.value as number) > SCHEMA_VERSION) {
          throw bad(
            `the backup is schema version ${line.value}, from a newer Parley (this one reads ` +
              `version ${SCHEMA_VERSION}); restore it with the newer Parley`,
          );
        }
        await batch.set(line.key, line.value, kb, vb, ttl);
        counts.entries++;
        if (line.key[0] === PREFIX.user) counts.users++;
        else if (line.key[0] === PREFIX.group) counts.groups++;
        else if (line.key[0] === PREFIX.inbox) counts.queued++;
      }
    }
    if (last === 0) throw new BackupFileError(path, 1, "the file is empty");
    if (!ended) {
      throw new BackupFileError(path, last, "the file ends without its end line (truncated?)");
    }
    await batch.flush();
    if (seed) {
      await writeIdentity(dir, seed);
      counts.fingerprint = (await readIdentity(dir))!.fingerprint;
    }
    return counts;
  } finally {
    kv.close();
    try {
      file.close();
    } catch {
      // The readable stream closed it already.
    }
  }
}

/** Throws unless `dataDir` is empty but for the lock and temp dirs of earlier restores. */
async function checkEmpty(dataDir: string): Promise<void> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dataDir)) {
    if (entry.name === LOCK_FILE) continue;
    if (entry.name.startsWith(TEMP_PREFIX) && entry.isDirectory) {
      // We hold the lock, so no restore is running: this one was cut off.
      await Deno.remove(join(dataDir, entry.name), { recursive: true });
      continue;
    }
    found.push(entry.name);
  }
  if (found.length === 0) return;
  const store = found.some((name) => name.startsWith(KV_FILE));
  const what = store
    ? "already holds a Parley store"
    : found.includes(IDENTITY_FILE)
    ? "already holds a Parley identity key"
    : `is not empty (it holds "${found.sort()[0]}")`;
  throw new Error(`The data dir "${dataDir}" ${what}; restore only into an empty or new directory`);
}

export async function restoreDataDir(path: string, dataDir: string): Promise<RestoreCounts> {
  if (!await exists(path)) throw new Error(`There is no backup file "${path}"`);
  const createdDir = !await exists(dataDir);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const createdLock = !await exists(join(dataDir, LOCK_FILE));
  let lock;
  let done = false;
  try {
    lock = await lockDataDir(dataDir, "admin restore");
    await checkEmpty(dataDir);
    const work = await Deno.makeTempDir({ dir: dataDir, prefix: TEMP_PREFIX });
    try {
      const counts = await load(path, join(work, KV_FILE), work);
      // The key first: a KV file without it would make the server invent a new identity.
      if (counts.fingerprint) {
        await Deno.rename(join(work, IDENTITY_FILE), join(dataDir, IDENTITY_FILE));
      }
      for (const suffix of [...KV_SIDE_FILES, ""]) {
        if (await exists(join(work, KV_FILE + suffix))) {
          await Deno.rename(join(work, KV_FILE + suffix), join(dataDir, KV_FILE + suffix));
        }
      }
      done = true;
      return counts;
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  } finally {
    // A refused or failed restore leaves the directory as it found it.
    if (!done && createdDir) await Deno.remove(dataDir, { recursive: true });
    else if (!done && createdLock) await Deno.remove(join(dataDir, LOCK_FILE));
    lock?.release();
  }
}

export const RESTORE: AdminCommand = {
  name: "restore",
  args: "FILE",
  summary: "Restore a backup into an empty or new data dir",
  description:
    'Restores a backup made by "parley admin backup" into the data dir given with --data,\n' +
    "which must be empty or not exist yet (an existing store is never overwritten). Every line\n" +
    "is checked; a bad one stops the restore with its line number and leaves nothing behind.\n" +
    "Resume tokens that expired since the backup are dropped. Then start the server on it.\n" +
    "With --cluster: into the cluster's prefix (--prefix or cluster.prefix), which must hold\n" +
    "nothing; a restore that fails deletes what it made. A backup made with --cluster is copied\n" +
    "as it is. A data dir's backup moves a single server into the cluster: its identity key,\n" +
    "accounts, resume tokens, invite codes, friends, blocks, groups (with their ids),\n" +
    "invitations, queued messages and world backlog (stop the server before the backup).",
  options: {},
  optionHelp: [],
  arity: 1,
  async run(ctx) {
    const [file] = ctx.positionals;
    if (ctx.cluster && await isDataDirBackup(resolve(file))) {
      console.log(migrationReport(await migrateIntoCluster(ctx, file)));
      return 0;
    }
    if (ctx.cluster) {
      const c = await restoreCluster(ctx, file);
      const dropped = c.delivered > 0
        ? `, leaving out ${plural(c.delivered, "message")} delivered while the backup ran`
        : "";
      console.log(
        `Restored ${plural(c.streams, "stream")} of the prefix "${c.from}" into the prefix ` +
          `"${c.prefix}" (${plural(c.users, "user")}, ${plural(c.groups, "group")}, ` +
          `${plural(c.queued, "queued message")}${dropped}). Start the nodes on it.`,
      );
      return 0;
    }
    const c = await restoreDataDir(resolve(file), ctx.dataDir);
    const key = c.fingerprint
      ? ` and the identity key ${c.fingerprint}`
      : "; the backup holds no identity key, so the server will make a new one";
    const expired = c.expired > 0
      ? `, dropping ${plural(c.expired, "expired token entry", "expired token entries")}`
      : "";
    console.log(
      `Restored ${plural(c.entries, "entry", "entries")} (${plural(c.users, "user")}, ` +
        `${plural(c.groups, "group")}, ${plural(c.queued, "queued message")})${expired}${key} ` +
        `into ${ctx.dataDir}.`,
    );
    return 0;
  },
};

/** What a migration moved, kind by kind, and what the operator does next. */
function migrationReport(c: MigrateCounts): string {
  const key = c.fingerprint
    ? `The identity key ${c.fingerprint} is the cluster's: clients keep trusting it.`
    : "The backup holds no identity key: the first node makes a new one, which clients will " +
      "refuse until their users accept it.";
  const left: string[] = [];
  if (c.expired > 0) left.push(plural(c.expired, "expired token entry", "expired token entries"));
  if (c.broken > 0) {
    left.push(`${plural(c.broken, "queued message")} whose shared content was incomplete`);
  }
  return [
    `Moved the single server's backup into the prefix "${c.prefix}":`,
    `  ${plural(c.users, "user")}, ${plural(c.families, "resume token")} (one per device), ` +
    `${plural(c.invites, "invite code")}`,
    `  ${plural(c.friendships, "friendship")}, ${plural(c.requests, "friend request")}, ` +
    `${plural(c.blocks, "block")}`,
    `  ${plural(c.groups, "group")}, ${plural(c.invitations, "group invitation")}`,
    `  ${plural(c.queued, "queued message")} (${
      plural(c.blobs, "image or text", "images or texts")
    } stored once), ` +
    `${plural(c.world, "world message")}`,
    ...(left.length > 0 ? [`Left out: ${left.join(", ")}.`] : []),
    key,
    "Start the nodes on the prefix and give clients the nodes' addresses: users resume with " +
    "their tokens or log in with their passwords.",
  ].join("\n");
}
