/** The handshake's reads and writes over a Transport; the byte logic is in src/crypto/. */

import {
  CLIENT_HELLO_BYTES,
  encodeClientHello,
  encodeRefusal,
  finishClient,
  isServerHello,
  parseClientHello,
  PROTOCOL_VERSION,
  REFUSAL_HEAD_BYTES,
  respondToClient,
  SERVER_HELLO_BYTES,
  SERVER_PREFIX_BYTES,
  type SessionKeys,
} from "../crypto/handshake.ts";
import { type KeyPair, x25519KeyPair } from "../crypto/keys.ts";
import { HandshakeError } from "../protocol/errors.ts";
import { FrameDecoder } from "../protocol/frame.ts";
import { goneOr, type Transport, writeAll } from "./transport.ts";

/** What a finished handshake hands to the Channel: keys and any bytes already read. */
export interface Handshaken {
  keys: SessionKeys;
  decoder: FrameDecoder;
}

/** writeAll, with an error that only means the connection is gone as a ConnectionGone. */
async function send(transport: Transport, bytes: Uint8Array): Promise<void> {
  try {
    await writeAll(transport, bytes);
  } catch (e) {
    throw goneOr(transport, e);
  }
}

/** Reads until the decoder can hand out `n` raw bytes. Small handshake reads only. */
async function readRaw(
  transport: Transport,
  decoder: FrameDecoder,
  n: number,
): Promise<Uint8Array> {
  const buf = new Uint8Array(256);
  while (true) {
    const got = decoder.readRaw(n);
    if (got) return got;
    let count: number | null;
    try {
      count = await transport.read(buf);
    } catch (e) {
      if (transport.isGone(e)) throw new HandshakeError("Connection closed during the handshake");
      throw e;
    }
    if (count === null) throw new HandshakeError("Connection closed during the handshake");
    decoder.push(buf.subarray(0, count));
  }
}

/** Server side. Refuses an unknown protocol version with a readable reason before closing. */
export async function acceptHandshake(
  transport: Transport,
  identity: KeyPair,
  maxFrameBytes: number,
): Promise<Handshaken> {
  const decoder = new FrameDecoder(maxFrameBytes);
  const hello = await readRaw(transport, decoder, CLIENT_HELLO_BYTES);
  const { version } = parseClientHello(hello);
  if (version !== PROTOCOL_VERSION) {
    const reason = `This server speaks Parley protocol version ${PROTOCOL_VERSION}, not ${version}`;
    await send(transport, encodeRefusal(reason)).catch(() => {});
    throw new HandshakeError(reason);
  }
  const { serverHello, keys } = respondToClient(hello, identity);
  await send(transport, serverHello);
  return { keys, decoder };
}

/** Client side. Returns the server's identity key for the caller to check against its pin. */
export async function initiateHandshake(
  transport: Transport,
  maxFrameBytes: number,
  version = PROTOCOL_VERSION,
): Promise<Handshaken & { serverIdentity: Uint8Array }> {
  const ephemeral = x25519KeyPair();
  const hello = encodeClientHello(ephemeral.publicKey, version);
  await send(transport, hello);
  const decoder = new FrameDecoder(maxFrameBytes);
  const prefix = await readRaw(transport, decoder, SERVER_PREFIX_BYTES);
  if (!isServerHello(prefix)) {
    const head = await readRaw(transport, decoder, REFUSAL_HEAD_BYTES);
    const length = new DataView(head.buffer).getUint16(1);
    const reason = new TextDecoder().decode(await readRaw(transport, decoder, length));
    throw new HandshakeError(`The server refused the connection: ${reason}`);
  }
  const rest = await readRaw(transport, decoder, SERVER_HELLO_BYTES - SERVER_PREFIX_BYTES);
  const serverHello = new Uint8Array(SERVER_HELLO_BYTES);
  serverHello.set(prefix);
  serverHello.set(rest, SERVER_PREFIX_BYTES);
  const { keys, serverIdentity } = finishClient(hello, ephemeral, serverHello);
  return { keys, decoder, serverIdentity };
}
