/**
 * `parley admin backup|restore --cluster`: a cluster's NATS store in one JSON-lines file, and
 * back into a prefix that holds nothing (src/store/nats/backup.ts says what is copied, what is
 * computed again, and what a restore renumbers).
 *
 *   {"format":"parley-cluster-backup","version":1,"parley":"0.1.0","created":"…","prefix":"parley"}
 *   {"stream":{"kind":"users","kv":true,"config":{…the stream's config…}}}
 *   {"q":7,"s":"$KV.parley_users.user.alice","d":"<base64>"}       a message of that stream
 *   {"q":9,"s":"parley.inbox.bob","d":"…","h":{"Nats-Msg-Id":["…"]}}  with its headers
 *   {"end":{"streams":12,"messages":3456}}                          last: a truncated file shows
 *
 * `q` is the message's sequence in the backed-up stream (for reading the file; a restore
 * renumbers). The identity key is the `identity` bucket's, so it is in the file like the rest:
 * keep the file as secret as the key (mode 0600).
 */

import { basename, dirname, join, resolve } from "node:path";
import type { StreamConfig } from "../cluster/nats.ts";
import { type DumpItem, dumpStore, restoreStore } from "../store/nats/backup.ts";
import type { DumpedMessage } from "../store/nats/dump.ts";
import { VERSION } from "../version.ts";
import { LineWriter } from "./backup.ts";
import { parseJson } from "./backup_format.ts";
import { storeContext, withNats } from "./cluster.ts";
import type { AdminContext } from "./command.ts";
import { exists } from "./data_dir.ts";
import { BackupFileError, lines } from "./restore.ts";

export const CLUSTER_BACKUP_FORMAT = "parley-cluster-backup";
export const CLUSTER_BACKUP_VERSION = 1;

export interface ClusterBackupCounts {
  streams: number;
  messages: number;
  bytes: number;
  prefix: string;
}

function messageLine(m: DumpedMessage): string {
  const line: Record<string, unknown> = { q: m.seq, s: m.subject, d: m.data.toBase64() };
  if (m.headers) line.h = m.headers;
  return JSON.stringify(line);
}

export async function backupCluster(
  ctx: AdminContext,
  file: string,
): Promise<ClusterBackupCounts> {
  const cluster = ctx.cluster!;
  const target = resolve(file);
  if (!await exists(dirname(target))) {
    throw new Error(`Cannot write "${target}": its directory does not exist`);
  }
  return await withNats(cluster, "backup", async (nc) => {
    const store = await storeContext(nc, ctx, cluster);
    const work = await Deno.makeTempDir({ dir: dirname(target), prefix: `.${basename(target)}.` });
    try {
      const temp = join(work, "backup.jsonl");
      const out = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
      let counts;
      let written;
      try {
        const writer = new LineWriter(out);
        await writer.line(JSON.stringify({
          format: CLUSTER_BACKUP_FORMAT,
          version: CLUSTER_BACKUP_VERSION,
          parley: VERSION,
          created: new Date().toISOString(),
          prefix: store.prefix,
        }));
        counts = await dumpStore(
          store,
          (item) =>
            writer.line("stream" in item ? JSON.stringify(item) : messageLine(item.message)),
        );
        await writer.line(JSON.stringify({ end: counts }));
        await writer.flush();
        await out.sync();
        written = writer.written;
      } finally {
        out.close();
      }
      await Deno.chmod(temp, 0o600);
      await Deno.rename(temp, target);
      return { ...counts, bytes: written, prefix: store.prefix };
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  });
}

interface Header {
  prefix: string;
}

function parseHeader(text: string): Header {
  let json: Record<string, unknown>;
  try {
    json = parseJson(text);
  } catch {
    throw new SyntaxError("it is not a Parley backup header");
  }
  if (json.format === "parley-backup") {
    throw new SyntaxError(
      "it is a backup of a data dir's store (made without --cluster); restore it with --data",
    );
  }
  if (json.format !== CLUSTER_BACKUP_FORMAT) {
    throw new SyntaxError("it is not a Parley cluster backup header");
  }
  const { version, prefix } = json;
  if (!Number.isInteger(version) || (version as number) < 1) {
    throw new SyntaxError("the header has no valid format version");
  }
  if ((version as number) > CLUSTER_BACKUP_VERSION) {
    throw new SyntaxError(
      `the backup is format version ${version}, newer than this Parley reads ` +
        `(${CLUSTER_BACKUP_VERSION}); restore it with the Parley ${
          String(json.parley)
        } that made it`,
    );
  }
  if (typeof prefix !== "string" || !/^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/.test(prefix)) {
    throw new SyntaxError('the header needs the "prefix" it was made from');
  }
  return { prefix };
}

type Line = DumpItem | { end: { streams: number; messages: number } };

function parseLine(text: string): Line {
  const json = parseJson(text);
  const only = (fields: string[]) => {
    const extra = Object.keys(json).find((k) => !fields.includes(k));
    if (extra !== undefined) throw new SyntaxError(`it has an unknown field "${extra}"`);
  };
  if ("stream" in json) {
    only(["stream"]);
    const s = json.stream as Record<string, unknown> | null;
    if (
      typeof s !== "object" || s === null || typeof s.kind !== "string" ||
      !/^[a-z]+$/.test(s.kind) || typeof s.kv !== "boolean" || typeof s.config !== "object" ||
      s.config === null || typeof (s.config as { name?: unknown }).name !== "string"
    ) {
      throw new SyntaxError('a stream line needs "kind", "kv" and its "config"');
    }
    return { stream: { kind: s.kind, kv: s.kv, config: s.config as StreamConfig } };
  }
  if ("end" in json) {
    only(["end"]);
    const end = json.end as Record<string, unknown> | null;
    if (
      typeof end !== "object" || end === null || !Number.isInteger(end.streams) ||
      !Number.isInteger(end.messages)
    ) throw new SyntaxError("the end line needs the counts of streams and messages");
    return { end: { streams: end.streams as number, messages: end.messages as number } };
  }
  only(["q", "s", "d", "h"]);
  if (!Number.isSafeInteger(json.q) || typeof json.s !== "string" || typeof json.d !== "string") {
    throw new SyntaxError('a message needs "q", "s" and "d"');
  }
  let data: Uint8Array;
  try {
    data = Uint8Array.fromBase64(json.d);
  } catch {
    throw new SyntaxError('a message\'s "d" must be base64');
  }
  const m: DumpedMessage = { seq: json.q as number, subject: json.s, data };
  if (json.h !== undefined) {
    const h = json.h as Record<string, unknown>;
    if (
      typeof h !== "object" || h === null ||
      !Object.values(h).every((v) => Array.isArray(v) && v.every((x) => typeof x === "string"))
    ) throw new SyntaxError('a message\'s "h" must map header names to lists of strings');
    m.headers = h as Record<string, string[]>;
  }
  return { message: m };
}

/** The file's items, checked line by line (the end line included) as they are read. */
async function* read(path: string): AsyncGenerator<DumpItem> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw new Error(`Cannot read the backup "${path}": ${(e as Error).message}`);
  }
  try {
    let streams = 0;
    let messages = 0;
    let ended = false;
    let last = 0;
    for await (const [n, text] of lines(file, path)) {
      last = n;
      const bad = (problem: string) => new BackupFileError(path, n, problem);
      if (n === 1) {
        try {
          parseHeader(text);
        } catch (e) {
          throw bad((e as Error).message);
        }
        continue;
      }
      if (ended) throw bad("there is more after the end line");
      let line: Line;
      try {
        line = parseLine(text);
      } catch (e) {
        throw bad((e as Error).message);
      }
      if ("end" in line) {
        if (line.end.streams !== streams || line.end.messages !== messages) {
          throw bad(
            `the end line counts ${line.end.streams} streams and ${line.end.messages} ` +
              `messages, the file holds ${streams} and ${messages}`,
          );
        }
        ended = true;
        continue;
      }
      if ("stream" in line) streams++;
      else if (streams === 0) throw bad("a message before any stream");
      else messages++;
      yield line;
    }
    if (last === 0) throw new BackupFileError(path, 1, "the file is empty");
    if (!ended) {
      throw new BackupFileError(path, last, "the file ends without its end line (truncated?)");
    }
  } finally {
    try {
      file.close();
    } catch {
      // The readable stream closed it already.
    }
  }
}

/** The prefix a backup file was made from (its header). */
async function prefixOf(path: string): Promise<string> {
  const file = await Deno.open(path);
  try {
    for await (const [, text] of lines(file, path)) {
      try {
        return parseHeader(text).prefix;
      } catch (e) {
        throw new BackupFileError(path, 1, (e as Error).message);
      }
    }
    throw new BackupFileError(path, 1, "the file is empty");
  } finally {
    try {
      file.close();
    } catch {
      // closed by the stream
    }
  }
}

export async function restoreCluster(ctx: AdminContext, file: string) {
  const cluster = ctx.cluster!;
  const path = resolve(file);
  if (!await exists(path)) throw new Error(`There is no backup file "${path}"`);
  const from = await prefixOf(path);
  return await withNats(cluster, "restore", async (nc) => {
    const store = await storeContext(nc, ctx, cluster, false);
    const tally = await restoreStore(store, () => read(path), from);
    return { ...tally, from, prefix: store.prefix };
  });
}
