/**
 * The handshake's byte layouts, with no cryptography: the Deno side (handshake.ts, over keys.ts)
 * and the browser's (web/handshake.ts, over WebCrypto) build and read the same bytes from here.
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

/** Raw X25519 and Ed25519 public keys, and X25519 shared secrets. */
export const HANDSHAKE_KEY_BYTES = 32;
export const HANDSHAKE_SIGNATURE_BYTES = 64;
/** Each direction's AES-256-GCM key. */
export const SESSION_KEY_BYTES = 32;

export const MAGIC = new Uint8Array([0x50, 0x52, 0x4c, 0x59]); // "PRLY"
export const PROTOCOL_VERSION = 1;
export const CLIENT_HELLO_BYTES = 4 + 1 + HANDSHAKE_KEY_BYTES;
/** The part of a ServerHello that tells a hello from a refusal: magic and version. */
export const SERVER_PREFIX_BYTES = 5;
/** The part of a ServerHello that the transcript hash covers: all but the signature. */
export const SERVER_SIGNED_BYTES = SERVER_PREFIX_BYTES + 2 * HANDSHAKE_KEY_BYTES;
export const SERVER_HELLO_BYTES = SERVER_SIGNED_BYTES + HANDSHAKE_SIGNATURE_BYTES;
/** After the prefix, a refusal carries the supported version and the reason length. */
export const REFUSAL_HEAD_BYTES = 3;

export const SIGNATURE_CONTEXT = new TextEncoder().encode("parley/1 handshake signature");
export const INFO_C2S = new TextEncoder().encode("parley/1 client to server");
export const INFO_S2C = new TextEncoder().encode("parley/1 server to client");

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

/** A ServerHello with its signature still to be written (at SERVER_SIGNED_BYTES). */
export function encodeUnsignedServerHello(
  ephemeralPublic: Uint8Array,
  identityPublic: Uint8Array,
): Uint8Array {
  const hello = new Uint8Array(SERVER_HELLO_BYTES);
  hello.set(MAGIC);
  hello[4] = PROTOCOL_VERSION;
  hello.set(ephemeralPublic, 5);
  hello.set(identityPublic, 5 + HANDSHAKE_KEY_BYTES);
  return hello;
}

/** The fields of a ServerHello, checked for size, magic and version. */
export interface ServerHelloFields {
  serverEphemeral: Uint8Array<ArrayBuffer>;
  serverIdentity: Uint8Array<ArrayBuffer>;
  signature: Uint8Array<ArrayBuffer>;
}

export function parseServerHello(serverHello: Uint8Array): ServerHelloFields {
  if (
    serverHello.length !== SERVER_HELLO_BYTES ||
    !isServerHello(serverHello.subarray(0, SERVER_PREFIX_BYTES))
  ) {
    throw new HandshakeError("Malformed server hello");
  }
  return {
    serverEphemeral: serverHello.slice(5, 5 + HANDSHAKE_KEY_BYTES),
    serverIdentity: serverHello.slice(5 + HANDSHAKE_KEY_BYTES, SERVER_SIGNED_BYTES),
    signature: serverHello.slice(SERVER_SIGNED_BYTES),
  };
}

/** What th hashes: the ClientHello, then the ServerHello up to its signature. */
export function transcriptBytes(
  clientHello: Uint8Array,
  serverHello: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return concat(clientHello, serverHello.subarray(0, SERVER_SIGNED_BYTES));
}

/** What the server's identity key signs: the context string, then th. */
export function signedMessage(th: Uint8Array): Uint8Array<ArrayBuffer> {
  return concat(SIGNATURE_CONTEXT, th);
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

/** The reason length a refusal's head (the 3 bytes after its prefix) announces. */
export function refusalReasonLength(head: Uint8Array): number {
  if (head.length !== REFUSAL_HEAD_BYTES) throw new RangeError("A refusal head is 3 bytes");
  return (head[1] << 8) | head[2];
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

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
