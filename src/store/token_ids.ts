/** How every token store names tokens and device families, and what it shows of a family. */

import { sha256 } from "../crypto/keys.ts";
import type { TokenFamily } from "./types.ts";

/** A token as stored: only its SHA-256, in hex. */
export function hashOf(token: Uint8Array): string {
  return sha256(token).toHex();
}

/** One family per device and user; the id says nothing of the device without the user. */
export function deviceFamily(user: string, device: Uint8Array): string {
  return sha256(new TextEncoder().encode(`parley-device\0${user}\0`), device).toHex();
}

/** A family's public fields, without what a store keeps beside them. */
export function publicView(f: TokenFamily): TokenFamily {
  const { user, id, device, rotates, created, expires } = f;
  return { user, id, device, rotates, created, expires };
}
