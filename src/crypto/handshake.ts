/**
 * The handshake's cryptography, as pure functions over bytes (the I/O lives in src/transport/).
 * The byte layouts, and the th, signature and HKDF inputs, are in handshake_layout.ts (which a
 * browser loads without node:crypto); they are re-exported here for the Deno side.
 */

import { HandshakeError } from "../protocol/errors.ts";
import {
  encodeUnsignedServerHello,
  INFO_C2S,
  INFO_S2C,
  parseClientHello,
  parseServerHello,
  PROTOCOL_VERSION,
  SERVER_SIGNED_BYTES,
  type SessionKeys,
  signedMessage,
} from "./handshake_layout.ts";
import {
  ed25519Sign,
  ed25519Verify,
  hkdfSha256,
  type KeyPair,
  sha256,
  x25519Ephemeral,
  x25519Shared,
} from "./keys.ts";

export {
  CLIENT_HELLO_BYTES,
  encodeClientHello,
  encodeRefusal,
  isServerHello,
  MAGIC,
  parseClientHello,
  PROTOCOL_VERSION,
  REFUSAL_HEAD_BYTES,
  SERVER_HELLO_BYTES,
  SERVER_PREFIX_BYTES,
  type SessionKeys,
} from "./handshake_layout.ts";

function deriveKeys(shared: Uint8Array, th: Uint8Array): { c2s: Uint8Array; s2c: Uint8Array } {
  // Both keys share one buffer: each open connection holds them for its whole life.
  const both = new Uint8Array(64);
  both.set(hkdfSha256(shared, th, INFO_C2S, 32), 0);
  both.set(hkdfSha256(shared, th, INFO_S2C, 32), 32);
  return { c2s: both.subarray(0, 32), s2c: both.subarray(32) };
}

/**
 * Server side: answers a ClientHello and derives the server's session keys. The ephemeral key is
 * fresh and random unless given (the vectors and tests fix it).
 */
export function respondToClient(
  clientHello: Uint8Array,
  identity: KeyPair,
  ephemeral?: KeyPair,
): { serverHello: Uint8Array; keys: SessionKeys } {
  const { version, ephemeralPublic } = parseClientHello(clientHello);
  if (version !== PROTOCOL_VERSION) {
    throw new HandshakeError(`Unsupported protocol version ${version}`);
  }
  let ours: Uint8Array;
  let shared: Uint8Array;
  try {
    if (ephemeral) {
      ours = ephemeral.publicKey;
      shared = x25519Shared(ephemeral.secret, ephemeralPublic);
    } else {
      ({ publicKey: ours, shared } = x25519Ephemeral(ephemeralPublic));
    }
  } catch (e) {
    throw new HandshakeError("Client key is not a usable X25519 key", { cause: e });
  }
  const hello = encodeUnsignedServerHello(ours, identity.publicKey);
  const th = sha256(clientHello, hello.subarray(0, SERVER_SIGNED_BYTES));
  hello.set(ed25519Sign(identity, signedMessage(th)), SERVER_SIGNED_BYTES);
  const { c2s, s2c } = deriveKeys(shared, th);
  shared.fill(0);
  return { serverHello: hello, keys: { send: s2c, receive: c2s } };
}

/** Client side: checks the server's signature and derives the client's session keys. */
export function finishClient(
  clientHello: Uint8Array,
  ephemeral: KeyPair,
  serverHello: Uint8Array,
): { keys: SessionKeys; serverIdentity: Uint8Array } {
  const { serverEphemeral, serverIdentity, signature } = parseServerHello(serverHello);
  const th = sha256(clientHello, serverHello.subarray(0, SERVER_SIGNED_BYTES));
  let valid: boolean;
  try {
    valid = ed25519Verify(serverIdentity, signedMessage(th), signature);
  } catch (e) {
    // Not every 32 bytes are an Ed25519 point; node throws a TypeError for those.
    throw new HandshakeError("The server's identity key is not a valid Ed25519 key", { cause: e });
  }
  if (!valid) throw new HandshakeError("The server's handshake signature is invalid");
  let shared: Uint8Array;
  try {
    shared = x25519Shared(ephemeral.secret, serverEphemeral);
  } catch (e) {
    throw new HandshakeError("Server key is not a usable X25519 key", { cause: e });
  }
  const { c2s, s2c } = deriveKeys(shared, th);
  shared.fill(0);
  return { keys: { send: c2s, receive: s2c }, serverIdentity };
}
