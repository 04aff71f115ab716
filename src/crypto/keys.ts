/**
 * Raw 32-byte X25519 and Ed25519 keys for node:crypto, which wants DER. The fixed DER prefixes
 * wrap a raw key as PKCS#8 (private) or SPKI (public), per RFC 8410.
 */

import { Buffer } from "node:buffer";
import * as nc from "node:crypto";

const PKCS8_X25519 = Uint8Array.fromHex("302e020100300506032b656e04220420");
const PKCS8_ED25519 = Uint8Array.fromHex("302e020100300506032b657004220420");
const SPKI_X25519 = Uint8Array.fromHex("302a300506032b656e032100");
const SPKI_ED25519 = Uint8Array.fromHex("302a300506032b6570032100");

export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

function wrap(prefix: Uint8Array, raw: Uint8Array): Buffer {
  if (raw.length !== KEY_BYTES) throw new RangeError(`Key must be 32 bytes, got ${raw.length}`);
  return Buffer.concat([prefix, raw]);
}

function rawPublic(key: nc.KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "spki" });
  return new Uint8Array(der.buffer, der.byteOffset, der.byteLength).slice(-KEY_BYTES);
}

/** A key pair held as a node KeyObject plus its raw public half. */
export interface KeyPair {
  privateKey: nc.KeyObject;
  publicKey: Uint8Array;
}

/** An X25519 key pair from a 32-byte private scalar (random when omitted). */
export function x25519KeyPair(secret: Uint8Array = randomBytes(KEY_BYTES)): KeyPair {
  const privateKey = nc.createPrivateKey({
    key: wrap(PKCS8_X25519, secret),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: rawPublic(nc.createPublicKey(privateKey)) };
}

/** An Ed25519 key pair from a 32-byte seed (random when omitted). */
export function ed25519KeyPair(seed: Uint8Array = randomBytes(KEY_BYTES)): KeyPair {
  const privateKey = nc.createPrivateKey({
    key: wrap(PKCS8_ED25519, seed),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: rawPublic(nc.createPublicKey(privateKey)) };
}

/** X25519 shared secret; throws on a low-order peer key (an all-zero result). */
export function x25519Shared(privateKey: nc.KeyObject, peerPublic: Uint8Array): Uint8Array {
  const publicKey = nc.createPublicKey({
    key: wrap(SPKI_X25519, peerPublic),
    format: "der",
    type: "spki",
  });
  const shared = new Uint8Array(nc.diffieHellman({ privateKey, publicKey }));
  if (shared.every((b) => b === 0)) throw new RangeError("X25519 peer key is of low order");
  return shared;
}

export function ed25519Sign(privateKey: nc.KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(nc.sign(null, message, privateKey));
}

export function ed25519Verify(
  publicKey: Uint8Array,
  message: Uint8Array,
  sig: Uint8Array,
): boolean {
  const key = nc.createPublicKey({
    key: wrap(SPKI_ED25519, publicKey),
    format: "der",
    type: "spki",
  });
  return nc.verify(null, message, key, sig);
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = nc.createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
  length: number,
): Uint8Array {
  return new Uint8Array(nc.hkdfSync("sha256", ikm, salt, new TextEncoder().encode(info), length));
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A server key's fingerprint as users see it: "SHA256:" and unpadded base64, like SSH. */
export function fingerprint(publicKey: Uint8Array): string {
  return "SHA256:" + sha256(publicKey).toBase64({ omitPadding: true });
}
