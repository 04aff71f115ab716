/**
 * `parley admin backup FILE`: the whole store and the identity key in one JSON-lines file.
 *
 * Safe while the server runs, and consistent: SQLite's online backup copies the KV file in one
 * step under one read transaction (rate -1), so the copy is the store as of one instant, with
 * no half of a write in it, while the server goes on writing. The entries are then read from
 * that copy at leisure. The copy and the file being written live in a private temp dir beside
 * FILE; FILE appears (mode 0600: it holds password hashes and the identity key) only when it
 * is complete, by a rename.
 */

import { basename, dirname, join, resolve } from "node:path";
import { backup as sqliteBackup, DatabaseSync } from "node:sqlite";
import { PREFIX } from "../store/kv_keys.ts";
import { checkSchema, storeIn } from "../store/schema.ts";
import type { TokenFamily, TokenRecord } from "../store/types.ts";
import type { AdminCommand } from "./command.ts";
import { endLine, entryLine, headerLine, identityLine } from "./backup_format.ts";
import { exists, kvPath, readIdentity, requireStore } from "./data_dir.ts";
import { backupCluster } from "./cluster_backup.ts";
import { bytes, plural } from "./text.ts";

/** Lines are gathered into writes of about this size. */
const WRITE_CHUNK = 1024 * 1024;

/**
 * KV does not list expiry times, so they are read from the values that hold them: the token
 * store (src/store/tokens.ts) gives each of its keys an expireIn equal to the family's end.
 */
function expiryOf(key: Deno.KvKey, value: unknown): number | undefined {
  if (key[0] === PREFIX.token) return (value as TokenRecord).expires.getTime();
  if (key[0] === PREFIX.tokenFamily) return (value as TokenFamily).expires.getTime();
  if (key[0] === PREFIX.userToken) return (value as Date).getTime();
  return undefined;
}

/** Copies the live KV file to `to` as of one instant. */
async function snapshot(from: string, to: string): Promise<void> {
  const db = new DatabaseSync(from, { readOnly: true });
  try {
    await sqliteBackup(db, to, { rate: -1 });
  } finally {
    db.close();
  }
}

export class LineWriter {
  #parts: string[] = [];
  #size = 0;
  written = 0;
  readonly #encoder = new TextEncoder();

  constructor(private readonly file: Deno.FsFile) {}

  async line(text: string): Promise<void> {
    this.#parts.push(text, "\n");
    this.#size += text.length + 1;
    if (this.#size >= WRITE_CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    const data = this.#encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#size = 0;
    for (let at = 0; at < data.length;) at += await this.file.write(data.subarray(at));
    this.written += data.length;
  }
}

export interface BackupCounts {
  entries: number;
  users: number;
  groups: number;
  queued: number;
  bytes: number;
  fingerprint: string | null;
}

export async function backupDataDir(dataDir: string, file: string): Promise<BackupCounts> {
  await requireStore(dataDir);
  const identity = await readIdentity(dataDir);
  const target = resolve(file);
  if (!await exists(dirname(target))) {
    throw new Error(`Cannot write "${target}": its directory does not exist`);
  }
  const work = await Deno.makeTempDir({
    dir: dirname(target),
    prefix: `.${basename(target)}.`,
  });
  try {
    const copy = join(work, "snapshot.kv");
    await snapshot(kvPath(dataDir), copy);
    const counts: BackupCounts = {
      entries: 0,
      users: 0,
      groups: 0,
      queued: 0,
      bytes: 0,
      fingerprint: identity?.fingerprint ?? null,
    };
    const temp = join(work, "backup.jsonl");
    const out = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    const kv = await Deno.openKv(copy);
    try {
      // Entries are copied as they are, so an older layout is fine; a newer one is not this
      // Parley's to read.
      await checkSchema(kv, storeIn(dataDir), { older: true });
      const writer = new LineWriter(out);
      await writer.line(headerLine());
      if (identity) await writer.line(identityLine(identity.seed));
      for await (const e of kv.list({ prefix: [] })) {
        await writer.line(entryLine(e.key, e.value, expiryOf(e.key, e.value)));
        counts.entries++;
        if (e.key[0] === PREFIX.user) counts.users++;
        else if (e.key[0] === PREFIX.group) counts.groups++;
        else if (e.key[0] === PREFIX.inbox) counts.queued++;
      }
      await writer.line(endLine(counts.entries));
      await writer.flush();
      await out.sync();
      counts.bytes = writer.written;
    } finally {
      kv.close();
      out.close();
    }
    await Deno.chmod(temp, 0o600);
    await Deno.rename(temp, target);
    return counts;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

export const BACKUP: AdminCommand = {
  name: "backup",
  args: "FILE",
  summary: "Write the whole store and the identity key to FILE (safe while running)",
  description:
    "Writes every entry of the store and the server's identity key to FILE, as JSON lines\n" +
    "(mode 0600: it holds password hashes and the key clients pin). Safe while the server\n" +
    "runs: the store is copied as of one instant, and FILE appears only once it is complete.\n" +
    'Restore it with "parley admin restore FILE --data DIR".\n' +
    "With --cluster: every stream and bucket of the cluster's prefix, read while the nodes run\n" +
    "(each stream in one pass, as of its start; see docs/operating.md).",
  options: {},
  optionHelp: [],
  arity: 1,
  async run(ctx) {
    const [file] = ctx.positionals;
    if (ctx.cluster) {
      const c = await backupCluster(ctx, file);
      console.log(
        `Backed up ${plural(c.streams, "stream")} of the cluster's prefix "${c.prefix}" ` +
          `(${plural(c.messages, "message")}, the identity key among them) to ${resolve(file)} ` +
          `(${bytes(c.bytes)}).`,
      );
      return 0;
    }
    const c = await backupDataDir(ctx.dataDir, file);
    if (c.fingerprint === null) {
      console.error(
        `Warning: "${ctx.dataDir}" has no identity key; a server restored from this backup ` +
          "makes a new one, which every client will refuse until its users accept it.",
      );
    }
    const key = c.fingerprint ? ` and the identity key ${c.fingerprint}` : "";
    console.log(
      `Backed up ${plural(c.entries, "entry", "entries")} (${plural(c.users, "user")}, ` +
        `${plural(c.groups, "group")}, ${plural(c.queued, "queued message")})${key} ` +
        `to ${resolve(file)} (${bytes(c.bytes)}).`,
    );
    return 0;
  },
};
