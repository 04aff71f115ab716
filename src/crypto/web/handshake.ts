/**
 * The client side of the handshake over WebCrypto (crypto.subtle), for browsers: the same bytes
 * and the same checks as handshake.ts's finishClient, which runs on node:crypto or OpenSSL. The
 * layouts come from handshake_layout.ts; here are only the primitives: X25519, Ed25519 verify,
 * SHA-256 and HKDF-SHA-256. Everything is async because WebCrypto is.
 */

import { HandshakeError } from "../../protocol/errors.ts";
import {
  HANDSHAKE_KEY_BYTES,
  INFO_C2S,
  INFO_S2C,
  parseServerHello,
  SESSION_KEY_BYTES,
  type SessionKeys,
  signedMessage,
  transcriptBytes,
} from "../handshake_layout.ts";

/** An X25519 key pair whose private half never leaves WebCrypto. */
export interface WebEphemeral {
  privateKey: CryptoKey;
  publicKey: Uint8Array;
}

/** RFC 8410's PKCS#8 wrapping of a raw X25519 private scalar. */
const PKCS8_X25519 = new Uint8Array([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x6e,
  0x04,
  0x22,
  0x04,
  0x20,
]);

/** WebCrypto, or a clear error where the page is not a secure context (plain http to a host). */
export function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new HandshakeError(
      "WebCrypto is not available: the page must be served over https (or from localhost)",
    );
  }
  return s;
}

/**
 * A fresh X25519 key pair, or the one of `secret` (a raw 32-byte scalar: tests fix it to compare
 * with finishClient's keys).
 */
export async function webEphemeral(secret?: Uint8Array): Promise<WebEphemeral> {
  const s = subtle();
  let privateKey: CryptoKey;
  let publicKey: Uint8Array;
  try {
    if (secret === undefined) {
      const pair = await s.generateKey({ name: "X25519" }, false, ["deriveBits"]) as CryptoKeyPair;
      privateKey = pair.privateKey;
      publicKey = new Uint8Array(await s.exportKey("raw", pair.publicKey));
    } else {
      if (secret.length !== HANDSHAKE_KEY_BYTES) throw new RangeError("An X25519 key is 32 bytes");
      const der = new Uint8Array(PKCS8_X25519.length + secret.length);
      der.set(PKCS8_X25519);
      der.set(secret, PKCS8_X25519.length);
      // Extractable only to read its public half (JWK "x"), then imported again without.
      const full = await s.importKey("pkcs8", der, { name: "X25519" }, true, ["deriveBits"]);
      const jwk = await s.exportKey("jwk", full);
      der.fill(0);
      privateKey = await s.importKey("jwk", jwk, { name: "X25519" }, false, ["deriveBits"]);
      publicKey = fromBase64Url(jwk.x!);
    }
  } catch (e) {
    if (e instanceof RangeError) throw e;
    throw new HandshakeError("This browser's WebCrypto has no X25519", { cause: e });
  }
  if (publicKey.length !== HANDSHAKE_KEY_BYTES) {
    throw new HandshakeError(`WebCrypto gave an X25519 public key of ${publicKey.length} bytes`);
  }
  return { privateKey, publicKey };
}

/**
 * Client side: checks the server's signature and derives the client's session keys, as
 * finishClient does (the same HandshakeErrors for the same faults, the same key bytes).
 */
export async function finishClientWeb(
  clientHello: Uint8Array,
  ephemeral: WebEphemeral,
  serverHello: Uint8Array,
): Promise<{ keys: SessionKeys; serverIdentity: Uint8Array }> {
  const s = subtle();
  const { serverEphemeral, serverIdentity, signature } = parseServerHello(serverHello);
  const th = new Uint8Array(await s.digest("SHA-256", transcriptBytes(clientHello, serverHello)));
  let valid: boolean;
  try {
    const key = await s.importKey("raw", serverIdentity, { name: "Ed25519" }, false, ["verify"]);
    valid = await s.verify({ name: "Ed25519" }, key, signature, signedMessage(th));
  } catch (e) {
    // Not every 32 bytes are an Ed25519 point; WebCrypto may refuse those at import or verify.
    throw new HandshakeError("The server's identity key is not a valid Ed25519 key", { cause: e });
  }
  if (!valid) throw new HandshakeError("The server's handshake signature is invalid");
  let shared: Uint8Array<ArrayBuffer>;
  try {
    const peer = await s.importKey("raw", serverEphemeral, { name: "X25519" }, false, []);
    shared = new Uint8Array(
      await s.deriveBits({ name: "X25519", public: peer }, ephemeral.privateKey, 256),
    );
  } catch (e) {
    // WebCrypto throws for the all-zero result of a low-order key (and for keys it cannot use).
    throw new HandshakeError("Server key is not a usable X25519 key", { cause: e });
  }
  // Checked here too, as keys.ts's checkShared does (RFC 7748, section 6.1): an implementation
  // that returned the all-zero secret would otherwise give keys an attacker knows.
  if (shared.every((b) => b === 0)) {
    throw new HandshakeError("Server key is not a usable X25519 key");
  }
  const ikm = await s.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  shared.fill(0);
  const derive = async (info: Uint8Array<ArrayBuffer>) =>
    new Uint8Array(
      await s.deriveBits(
        { name: "HKDF", hash: "SHA-256", salt: th, info },
        ikm,
        SESSION_KEY_BYTES * 8,
      ),
    );
  const c2s = await derive(INFO_C2S);
  const s2c = await derive(INFO_S2C);
  return { keys: { send: c2s, receive: s2c }, serverIdentity };
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
