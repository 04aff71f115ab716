/** The handshake's reads and writes over a Transport; the byte logic is in src/crypto/. */

import {
  CLIENT_HELLO_BYTES,
  encodeClientHello,
  encodeRefusal,
  finishClient,
  parseClientHello,
  PROTOCOL_VERSION,
  respondToClient,
  type SessionKeys,
} from "../crypto/handshake.ts";
import { type KeyPair, x25519KeyPair } from "../crypto/keys.ts";
import { HandshakeError } from "../protocol/errors.ts";
import { FrameDecoder } from "../protocol/frame.ts";
import { readRaw, readServerHello, sendHandshake as send } from "./handshake_reads.ts";
import type { Transport } from "./transport.ts";

/** What a finished handshake hands to the Channel: keys and any bytes already read. */
export interface Handshaken {
  keys: SessionKeys;
  decoder: FrameDecoder;
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
  const serverHello = await readServerHello(transport, decoder);
  const { keys, serverIdentity } = finishClient(hello, ephemeral, serverHello);
  return { keys, decoder, serverIdentity };
}
