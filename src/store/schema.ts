/**
 * The store's schema version: which key layout (kv_keys.ts) and value shapes a KV file holds,
 * kept at ["meta", "schema"].
 *
 * The policy:
 * - A new store is written with the current version when it is created.
 * - A store with data but no version was made before versions existed: it has the layout of
 *   version 1, is read as such, and gets the version written the next time the server (or an
 *   admin command that takes the data dir) opens it.
 * - An older version is upgraded in place when the server (or an admin command that takes the
 *   data dir) opens it: the numbered migrations run one after another under the data dir's
 *   lock, and the version moves after each one, so a crash resumes at the step it cut off
 *   (each step must be safe to run again). Commands that only read beside a running server
 *   refuse an older store and say to start the server on it once.
 * - A newer version is refused, before anything is written, with a sentence that names both
 *   versions and says to run the newer Parley: an older Parley cannot know what changed.
 */

import { SCHEMA_KEY } from "./kv_keys.ts";

/** One upgrade step: from the version at its index + 1 to the next one. */
export interface Migration {
  /** What the step changes, in a sentence. */
  readonly summary: string;
  /** Must be safe to run again: a crash can cut it off before the version moves. */
  run(kv: Deno.Kv): Promise<void>;
}

/** The steps from version 1 on; none yet. Version N + 1 is what MIGRATIONS[N - 1] makes. */
export const MIGRATIONS: readonly Migration[] = [];

/** The layout this Parley reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.length + 1;

/** The layout of every store made before the version was written. */
const UNVERSIONED = 1;

/** The store is of a version this Parley will not open as it is. */
export class StoreSchemaError extends Error {
  override name = "StoreSchemaError";
}

/** The sentence for a store written by a newer Parley (short: the CLI cuts at 200 chars). */
export function newerStoreMessage(where: string, found: number, current: number): string {
  return `${where} is schema version ${found}, from a newer Parley (this one reads version ` +
    `${current}); run the newer Parley on it`;
}

async function readVersion(kv: Deno.Kv): Promise<{ version: number | null; written: boolean }> {
  const entry = await kv.get(SCHEMA_KEY);
  if (entry.versionstamp !== null) {
    const v = entry.value;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new StoreSchemaError(
        `The store's schema version (${String(v)}) is damaged; restore the store from a backup`,
      );
    }
    return { version: v, written: true };
  }
  for await (const _ of kv.list({ prefix: [] }, { limit: 1 })) {
    return { version: UNVERSIONED, written: false };
  }
  return { version: null, written: false };
}

/** The store's version; null for an empty store (a new one). */
export async function storeVersion(kv: Deno.Kv): Promise<number | null> {
  return (await readVersion(kv)).version;
}

/**
 * For the one writer, which holds the data dir's lock: writes the version into a new store,
 * upgrades an older one, and refuses a newer one before it writes anything. `where` names the
 * store in messages ('The store in "DIR"').
 */
export async function prepareSchema(
  kv: Deno.Kv,
  where: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<void> {
  const current = migrations.length + 1;
  const { version, written } = await readVersion(kv);
  if (version === null) {
    await kv.set(SCHEMA_KEY, current);
    return;
  }
  if (version > current) throw new StoreSchemaError(newerStoreMessage(where, version, current));
  if (!written) await kv.set(SCHEMA_KEY, version);
  for (let v = version; v < current; v++) {
    await migrations[v - 1].run(kv);
    await kv.set(SCHEMA_KEY, v + 1);
  }
  const after = await storeVersion(kv);
  if (after !== current) {
    throw new Error(`The store's schema version is ${after} after upgrading, not ${current}`);
  }
}

/**
 * For commands that read beside a running server (so they take no lock and write no version):
 * throws unless the store is of this version, or empty. With `older`, an older one passes too,
 * for commands that copy entries as they are (backup).
 */
export async function checkSchema(
  kv: Deno.Kv,
  where: string,
  opts: { older?: boolean; current?: number } = {},
): Promise<void> {
  const current = opts.current ?? SCHEMA_VERSION;
  const found = await storeVersion(kv);
  if (found === null || found === current) return;
  if (found > current) throw new StoreSchemaError(newerStoreMessage(where, found, current));
  if (opts.older) return;
  throw new StoreSchemaError(
    `${where} is schema version ${found}, older than this Parley's ${current}; start ` +
      `"parley serve" on it once to upgrade it`,
  );
}

/** How messages name the store in `dataDir`. */
export function storeIn(dataDir: string): string {
  return `The store in "${dataDir}"`;
}
