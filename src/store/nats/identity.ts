/**
 * The identity key of a cluster: every node presents the same one, so that clients' pins hold
 * whichever node they reach. It lives in the cluster's store (bucket `<prefix>_identity`), made
 * by the first node that finds none; an operator who keeps the key file instead puts the same
 * `identity.key` in each node's data dir, and a node whose file differs from the cluster's
 * refuses to start rather than split the cluster's identity.
 */

import { join } from "node:path";
import { ed25519KeyPair, KEY_BYTES, type KeyPair, randomBytes } from "../../crypto/keys.ts";
import { IDENTITY_FILE, parseIdentity } from "../identity.ts";
import type { NatsStoreContext } from "./context.ts";

const SEED_KEY = "seed";

/**
 * The cluster's identity key cannot be used as it is (damaged, or this node's key file is
 * another key): an operator's mistake to fix, said as it is rather than as a JetStream failure.
 */
export class ClusterIdentityError extends Error {
  override name = "ClusterIdentityError";
}

/** The identity key brought from a single server (import.ts): the key and value to write. */
export function importedIdentity(seed: Uint8Array): [string, Uint8Array] {
  return [SEED_KEY, new TextEncoder().encode(seed.toHex())];
}

async function readLocal(dataDir: string): Promise<Uint8Array | null> {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const seed = parseIdentity(text);
  if (!seed) {
    throw new ClusterIdentityError(
      `Identity key file "${path}" is damaged; restore it from a backup`,
    );
  }
  return seed;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The cluster's key: the one in the store, else this node's file, else a new one. */
export async function clusterIdentity(ctx: NatsStoreContext, dataDir: string): Promise<KeyPair> {
  // Read first thing after nodes made the bucket together: short deadlines, asked again.
  const kv = await ctx.quickBucket("identity");
  const get = () => ctx.creating(() => kv.get(SEED_KEY));
  const local = await readLocal(dataDir);
  let stored = await get();
  if (!stored || stored.operation !== "PUT") {
    const seed = local ?? randomBytes(KEY_BYTES);
    try {
      await kv.create(SEED_KEY, new TextEncoder().encode(seed.toHex()));
      return ed25519KeyPair(seed);
    } catch {
      // Another node made it first (or this create landed unanswered): the stored one is the
      // cluster's.
      stored = await get();
    }
  }
  const seed = stored && stored.operation === "PUT" ? parseIdentity(stored.string()) : null;
  if (!seed) {
    throw new ClusterIdentityError(
      "The cluster's identity key is damaged; restore it from a backup",
    );
  }
  if (local && !same(local, seed)) {
    throw new ClusterIdentityError(
      `The identity key in ${join(dataDir, IDENTITY_FILE)} is not the cluster's: every node must ` +
        "present the same key (remove the file to use the cluster's, see docs/cluster.md)",
    );
  }
  return ed25519KeyPair(seed);
}
