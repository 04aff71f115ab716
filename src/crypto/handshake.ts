/**
 * The handshake, as pure functions over bytes (the I/O lives in src/transport/).
 *
 *   ClientHello (37 B)  = "PRLY" | version u8 | client ephemeral X25519 public key (32)
 *   ServerHello (133 B) = "PRLY" | version u8 | server ephemeral X25519 public key (32)
 *                         | server identity Ed25519 public key (32) | signature (64)
 *   Refusal             = "PRLY" | 0x00 | supported version u8 | reason length u16 BE | reason
 *
 * th  = SHA-256(ClientHello | ServerHello[0..69])    (everything before the signature)
 * sig = Ed25519(identity, "parley/1 handshake signature" | th)
 * c2s, s2c = HKDF-SHA256(X25519 shared secret, salt = th, info = "parley/1 client to server" /
 *            "parley/1 server to client", 32 bytes each): one AES-256-GCM key per direction.
 */

import { HandshakeError } from "../protocol/errors.ts";
import {
  ed25519Sign,
  ed25519Verify,
  hkdfSha256,
  KEY_BYTES,
  type KeyPair,
  sha256,
  SIGNATURE_BYTES,
  x25519Ephemeral,
  x25519Shared,
} from "./keys.ts";

export const MAGIC = new Uint8Array([0x50, 0x52, 0x4c, 0x59]); // "PRLY"
export const PROTOCOL_VERSION = 1;
export const CLIENT_HELLO_BYTES = 4 + 1 + KEY_BYTES;
/** The part of a ServerHello that tells a hello from a refusal: magic and version. */
export const SERVER_PREFIX_BYTES = 5;
export const SERVER_HELLO_BYTES = SERVER_PREFIX_BYTES + KEY_BYTES + KEY_BYTES + SIGNATURE_BYTES;
/** After the prefix, a refusal carries the supported version and the reason length. */
export const REFUSAL_HEAD_BYTES = 3;

const SIGNATURE_CONTEXT = new TextEncoder().encode("parley/1 handshake signature");
const INFO_C2S = new TextEncoder().encode("parley/1 client to server");
const INFO_S2C = new TextEncoder().encode("parley/1 server to client");

/** The two AES-256-GCM keys of a connection, named from one side's point of view. */
export interface SessionKeys {
  send: Uint8Array;
  receive: Uint8Array;
}

function hasMagic(b: Uint8Array): boolean {
  return MAGIC.every((x, i) => b[i] === x);
}

export function encodeClientHello(
  ephemeralPublic: Uint8Array,
  version = PROTOCOL_VERSION,
): Uint8Array {
  const out = new Uint8Array(CLIENT_HELLO_BYTES);
  out.set(MAGIC);
  out[4] = version;
  out.set(ephemeralPublic, 5);
  return out;
}

export function parseClientHello(b: Uint8Array): { version: number; ephemeralPublic: Uint8Array } {
  if (b.length !== CLIENT_HELLO_BYTES || !hasMagic(b)) {
    throw new HandshakeError("Not a Parley client hello");
  }
  return { version: b[4], ephemeralPublic: b.slice(5) };
}

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
  const hello = new Uint8Array(SERVER_HELLO_BYTES);
  hello.set(MAGIC);
  hello[4] = PROTOCOL_VERSION;
  hello.set(ours, 5);
  hello.set(identity.publicKey, 5 + KEY_BYTES);
  const signedPart = SERVER_PREFIX_BYTES + 2 * KEY_BYTES;
  const th = sha256(clientHello, hello.subarray(0, signedPart));
  hello.set(ed25519Sign(identity, concat(SIGNATURE_CONTEXT, th)), signedPart);
  const { c2s, s2c } = deriveKeys(shared, th);
  shared.fill(0);
  return { serverHello: hello, keys: { send: s2c, receive: c2s } };
}

/** The refusal a server sends for a version it does not speak. */
export function encodeRefusal(reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason).subarray(0, 0xffff);
  const out = new Uint8Array(SERVER_PREFIX_BYTES + REFUSAL_HEAD_BYTES + text.length);
  out.set(MAGIC);
  out[4] = 0;
  out[5] = PROTOCOL_VERSION;
  new DataView(out.buffer).setUint16(6, text.length);
  out.set(text, 8);
  return out;
}

/** Reads the 5-byte prefix of the server's answer: true for a hello, false for a refusal. */
export function isServerHello(prefix: Uint8Array): boolean {
  if (prefix.length !== SERVER_PREFIX_BYTES || !hasMagic(prefix)) {
    throw new HandshakeError("The server did not answer with a Parley handshake");
  }
  if (prefix[4] === 0) return false;
  if (prefix[4] !== PROTOCOL_VERSION) {
    throw new HandshakeError(`The server answered with unsupported protocol version ${prefix[4]}`);
  }
  return true;
}

/** Client side: checks the server's signature and derives the client's session keys. */
export function finishClient(
  clientHello: Uint8Array,
  ephemeral: KeyPair,
  serverHello: Uint8Array,
): { keys: SessionKeys; serverIdentity: Uint8Array } {
  if (serverHello.length !== SERVER_HELLO_BYTES || !isServerHello(serverHello.subarray(0, 5))) {
    throw new HandshakeError("Malformed server hello");
  }
  const serverEphemeral = serverHello.slice(5, 5 + KEY_BYTES);
  const serverIdentity = serverHello.slice(5 + KEY_BYTES, 5 + 2 * KEY_BYTES);
  const signedPart = SERVER_PREFIX_BYTES + 2 * KEY_BYTES;
  const th = sha256(clientHello, serverHello.subarray(0, signedPart));
  const signature = serverHello.subarray(signedPart);
  let valid: boolean;
  try {
    valid = ed25519Verify(serverIdentity, concat(SIGNATURE_CONTEXT, th), signature);
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

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
