/**
 * What a data dir holds, looked at without taking it over: the KV file (opened only if it
 * exists, so that a mistyped --data does not create an empty store) and the identity key.
 */

import { join } from "node:path";
import { ed25519KeyPair, fingerprint } from "../crypto/keys.ts";
import { IDENTITY_FILE, parseIdentity } from "../store/identity.ts";
import { KV_FILE } from "../store/kv_store.ts";
import { checkSchema, storeIn } from "../store/schema.ts";

/** SQLite keeps these beside the KV file while it is open (write-ahead log, shared memory). */
export const KV_SIDE_FILES = ["-wal", "-shm"];

export function kvPath(dataDir: string): string {
  return join(dataDir, KV_FILE);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Throws unless `dataDir` holds a store. */
export async function requireStore(dataDir: string): Promise<void> {
  if (!await exists(kvPath(dataDir))) {
    throw new Error(`There is no Parley store in "${dataDir}" (no ${KV_FILE}); check --data`);
  }
}

/**
 * The store's KV file, for reading, once its schema version is checked. Safe beside a running
 * server: SQLite lets several processes share the file, and these commands only read (or add
 * entries that KV's atomic commits keep consistent: invite codes).
 */
export async function openExistingKv(dataDir: string): Promise<Deno.Kv> {
  await requireStore(dataDir);
  const kv = await Deno.openKv(kvPath(dataDir));
  try {
    await checkSchema(kv, storeIn(dataDir));
  } catch (e) {
    kv.close();
    throw e;
  }
  return kv;
}

/** Bytes on disk of the KV file and its side files. */
export async function storeBytes(dataDir: string): Promise<number> {
  let total = 0;
  for (const suffix of ["", ...KV_SIDE_FILES]) {
    try {
      total += (await Deno.stat(kvPath(dataDir) + suffix)).size;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return total;
}

export interface Identity {
  seed: Uint8Array;
  /** As clients show it. */
  fingerprint: string;
}

/** The server's identity key, null when there is none yet; throws when it is unreadable. */
export async function readIdentity(dataDir: string): Promise<Identity | null> {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot read the identity key "${path}": ${(e as Error).message}`);
  }
  const seed = parseIdentity(text);
  if (!seed) throw new Error(`The identity key "${path}" is damaged; restore it from a backup`);
  return { seed, fingerprint: fingerprint(ed25519KeyPair(seed).publicKey) };
}
