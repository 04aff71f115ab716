/**
 * The server's long-term Ed25519 identity key, made at first start and kept in the data dir
 * (owner-only) beside the KV file. Clients pin its public half, so losing or replacing this
 * file makes every client refuse the server until its users accept the new key. The file holds
 * the 32-byte seed as 64 lowercase hex digits and a newline.
 */

import { join } from "node:path";
import { ed25519KeyPair, KEY_BYTES, type KeyPair, randomBytes } from "../crypto/keys.ts";

export const IDENTITY_FILE = "identity.key";

/** The seed in the file's text, or null when the text is not an identity key. */
export function parseIdentity(text: string): Uint8Array | null {
  const hex = text.trim();
  return /^[0-9a-f]{64}$/.test(hex) ? Uint8Array.fromHex(hex) : null;
}

/**
 * Writes the key into `dir`: owner-only, never over an existing one (createNew: two servers
 * starting on one empty data dir must not make two identities).
 */
export async function writeIdentity(dir: string, seed: Uint8Array): Promise<void> {
  await Deno.writeTextFile(join(dir, IDENTITY_FILE), seed.toHex() + "\n", {
    createNew: true,
    mode: 0o600,
  });
}

export async function loadOrCreateIdentity(dataDir: string): Promise<KeyPair> {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string | null = null;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (text !== null) {
    const seed = parseIdentity(text);
    if (!seed) throw new Error(`Identity key file "${path}" is damaged; restore it from a backup`);
    return ed25519KeyPair(seed);
  }
  const seed = randomBytes(KEY_BYTES);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeIdentity(dataDir, seed);
  return ed25519KeyPair(seed);
}
