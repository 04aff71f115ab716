/**
 * The client's handshake over a Transport with WebCrypto (src/crypto/web/): what
 * handshake_io.ts's initiateHandshake does with node:crypto, for a browser.
 */

import { encodeClientHello, PROTOCOL_VERSION } from "../crypto/handshake_layout.ts";
import { finishClientWeb, webEphemeral } from "../crypto/web/handshake.ts";
import { FrameDecoder } from "../protocol/frame.ts";
import type { SessionKeys } from "../crypto/handshake_layout.ts";
import { readServerHello, sendHandshake } from "./handshake_reads.ts";
import type { Transport } from "./transport.ts";

export interface WebHandshaken {
  keys: SessionKeys;
  /** Holds any bytes the server sent after its hello: the channel reads on from them. */
  decoder: FrameDecoder;
  serverIdentity: Uint8Array;
}

/**
 * Client side. Returns the server's identity key for the caller to check against its pin.
 * `ephemeralSecret` fixes the X25519 key (tests compare the keys with finishClient's).
 */
export async function initiateWebHandshake(
  transport: Transport,
  maxFrameBytes: number,
  version = PROTOCOL_VERSION,
  ephemeralSecret?: Uint8Array,
): Promise<WebHandshaken> {
  const ephemeral = await webEphemeral(ephemeralSecret);
  const hello = encodeClientHello(ephemeral.publicKey, version);
  await sendHandshake(transport, hello);
  const decoder = new FrameDecoder(maxFrameBytes);
  const serverHello = await readServerHello(transport, decoder);
  const { keys, serverIdentity } = await finishClientWeb(hello, ephemeral, serverHello);
  return { keys, decoder, serverIdentity };
}
