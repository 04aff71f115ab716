/**
 * The server's long-term Ed25519 identity key, made at first start and kept in the data dir
 * (owner-only). Clients pin its public half, so losing or replacing this file makes every
 * client refuse the server until its users accept the new key.
 */

import { join } from "node:path";
import { ed25519KeyPair, KEY_BYTES, type KeyPair, randomBytes } from "../crypto/keys.ts";

export const IDENTITY_FILE = "identity.key";

export async function loadOrCreateIdentity(dataDir: string): Promise<KeyPair> {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string | null = null;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (text !== null) {
    const hex = text.trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) {
      throw new Error(`Identity key file "${path}" is damaged; restore it from a backup`);
    }
    return ed25519KeyPair(Uint8Array.fromHex(hex));
  }
  const seed = randomBytes(KEY_BYTES);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  // createNew: two servers starting on one empty data dir must not make two identities.
  await Deno.writeTextFile(path, seed.toHex() + "\n", { createNew: true, mode: 0o600 });
  return ed25519KeyPair(seed);
}
