/**
 * Raw 32-byte X25519 and Ed25519 keys, SHA-256 and HKDF, for the handshake and the stores. The
 * primitives come from node:crypto, or from the system's OpenSSL once native_keys.ts has loaded
 * and checked it (the handshake then costs a fraction of its node:crypto time). Both give the
 * same bytes, and keys are raw bytes either way, so a key made under one works under the other.
 */

import { Buffer } from "node:buffer";
import * as nc from "node:crypto";
import { formatFingerprint } from "./fingerprint.ts";

export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/** A key pair as raw bytes: the private scalar (X25519) or seed (Ed25519), and the public key. */
export interface KeyPair {
  secret: Uint8Array;
  publicKey: Uint8Array;
}

/** What the functions below are built on; every method checks its sizes. */
export interface KeyPrimitives {
  /** "node:crypto" or "openssl". */
  readonly name: string;
  x25519Public(secret: Uint8Array): Uint8Array;
  /** Throws on a peer key that is not usable (one of low order gives an all-zero secret). */
  x25519Shared(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array;
  /** A fresh random key pair's public key and its secret shared with `peerPublic`, at once. */
  x25519Ephemeral(peerPublic: Uint8Array): { publicKey: Uint8Array; shared: Uint8Array };
  ed25519Public(seed: Uint8Array): Uint8Array;
  /** `seed` is the key's identity: an implementation may keep a prepared key per seed array. */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  sha256(parts: readonly Uint8Array[]): Uint8Array;
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

const PKCS8_X25519 = Uint8Array.fromHex("302e020100300506032b656e04220420");
const PKCS8_ED25519 = Uint8Array.fromHex("302e020100300506032b657004220420");
const SPKI_X25519 = Uint8Array.fromHex("302a300506032b656e032100");
const SPKI_ED25519 = Uint8Array.fromHex("302a300506032b6570032100");

/** Throws unless `key` is a raw 32-byte key. */
export function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new RangeError(`Key must be 32 bytes, got ${key.length}`);
}

/** Throws for the all-zero X25519 result of a low-order peer key (RFC 7748, section 6.1). */
export function checkShared(shared: Uint8Array): Uint8Array {
  if (shared.every((b) => b === 0)) throw new RangeError("X25519 peer key is of low order");
  return shared;
}

// node:crypto wants DER: these fixed prefixes wrap a raw key as PKCS#8 (private) or SPKI
// (public), per RFC 8410.
function wrap(prefix: Uint8Array, raw: Uint8Array): Buffer {
  checkKey(raw);
  return Buffer.concat([prefix, raw]);
}

function nodePrivate(prefix: Uint8Array, secret: Uint8Array): nc.KeyObject {
  return nc.createPrivateKey({ key: wrap(prefix, secret), format: "der", type: "pkcs8" });
}

function nodeRawPublic(privateKey: nc.KeyObject): Uint8Array {
  const der = nc.createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return new Uint8Array(der.buffer, der.byteOffset, der.byteLength).slice(-KEY_BYTES);
}

function nodeShared(privateKey: nc.KeyObject, peerPublic: Uint8Array): Uint8Array {
  const publicKey = nc.createPublicKey({
    key: wrap(SPKI_X25519, peerPublic),
    format: "der",
    type: "spki",
  });
  return checkShared(new Uint8Array(nc.diffieHellman({ privateKey, publicKey })));
}

/** Signing keys made once per seed array: a server signs every handshake with the same one. */
const nodeSigners = new WeakMap<Uint8Array, nc.KeyObject>();

export const nodeKeys: KeyPrimitives = {
  name: "node:crypto",
  x25519Public: (secret) => nodeRawPublic(nodePrivate(PKCS8_X25519, secret)),
  x25519Shared: (secret, peerPublic) => nodeShared(nodePrivate(PKCS8_X25519, secret), peerPublic),
  x25519Ephemeral(peerPublic) {
    const key = nodePrivate(PKCS8_X25519, randomBytes(KEY_BYTES));
    return { publicKey: nodeRawPublic(key), shared: nodeShared(key, peerPublic) };
  },
  ed25519Public: (seed) => nodeRawPublic(nodePrivate(PKCS8_ED25519, seed)),
  ed25519Sign(seed, message) {
    let key = nodeSigners.get(seed);
    if (!key) nodeSigners.set(seed, key = nodePrivate(PKCS8_ED25519, seed));
    return new Uint8Array(nc.sign(null, message, key));
  },
  sha256(parts) {
    const h = nc.createHash("sha256");
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  },
  hkdfSha256: (ikm, salt, info, length) =>
    new Uint8Array(nc.hkdfSync("sha256", ikm, salt, info, length)),
};

let active: KeyPrimitives = nodeKeys;

/** The primitives every function below uses from now on (native_keys.ts chooses). */
export function useKeyPrimitives(primitives: KeyPrimitives): void {
  active = primitives;
}

export function keyPrimitives(): KeyPrimitives {
  return active;
}

/** An X25519 key pair from a 32-byte private scalar (random when omitted). */
export function x25519KeyPair(secret: Uint8Array = randomBytes(KEY_BYTES)): KeyPair {
  // A copy of its own: signers are cached by the array, which a caller might zero or reuse.
  const own = secret.slice();
  return { secret: own, publicKey: active.x25519Public(own) };
}

/** An Ed25519 key pair from a 32-byte seed (random when omitted). */
export function ed25519KeyPair(seed: Uint8Array = randomBytes(KEY_BYTES)): KeyPair {
  const own = seed.slice();
  return { secret: own, publicKey: active.ed25519Public(own) };
}

/** X25519 shared secret; throws on a low-order peer key (an all-zero result). */
export function x25519Shared(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  return active.x25519Shared(secret, peerPublic);
}

/** A fresh ephemeral key's public half and its secret shared with `peerPublic`. */
export function x25519Ephemeral(
  peerPublic: Uint8Array,
): { publicKey: Uint8Array; shared: Uint8Array } {
  return active.x25519Ephemeral(peerPublic);
}

export function ed25519Sign(pair: KeyPair, message: Uint8Array): Uint8Array {
  return active.ed25519Sign(pair.secret, message);
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
  return active.sha256(parts);
}

const encoder = new TextEncoder();

export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string | Uint8Array,
  length: number,
): Uint8Array {
  return active.hkdfSha256(
    ikm,
    salt,
    typeof info === "string" ? encoder.encode(info) : info,
    length,
  );
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A server key's fingerprint as users see it: "SHA256:" and unpadded base64, like SSH. */
export function fingerprint(publicKey: Uint8Array): string {
  return formatFingerprint(sha256(publicKey));
}
