/**
 * The handshake's reads and writes over a Transport, without its cryptography: shared by the
 * Deno side (handshake_io.ts) and the browser's (web_handshake_io.ts), so that both read a
 * refusal and a ServerHello the same way.
 */

import {
  isServerHello,
  REFUSAL_HEAD_BYTES,
  refusalReasonLength,
  SERVER_HELLO_BYTES,
  SERVER_PREFIX_BYTES,
} from "../crypto/handshake_layout.ts";
import { HandshakeError } from "../protocol/errors.ts";
import type { FrameDecoder } from "../protocol/frame.ts";
import { goneOr, type Transport, writeAll } from "./transport.ts";

/** writeAll, with an error that only means the connection is gone as a ConnectionGone. */
export async function sendHandshake(transport: Transport, bytes: Uint8Array): Promise<void> {
  try {
    await writeAll(transport, bytes);
  } catch (e) {
    throw goneOr(transport, e);
  }
}

/** Reads until the decoder can hand out `n` raw bytes. Small handshake reads only. */
export async function readRaw(
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

/**
 * Client side: reads the server's answer to a ClientHello. Returns the whole ServerHello; throws
 * a HandshakeError with the server's reason for a refusal.
 */
export async function readServerHello(
  transport: Transport,
  decoder: FrameDecoder,
): Promise<Uint8Array> {
  const prefix = await readRaw(transport, decoder, SERVER_PREFIX_BYTES);
  if (!isServerHello(prefix)) {
    const head = await readRaw(transport, decoder, REFUSAL_HEAD_BYTES);
    const length = refusalReasonLength(head);
    const reason = new TextDecoder().decode(await readRaw(transport, decoder, length));
    throw new HandshakeError(`The server refused the connection: ${reason}`);
  }
  const rest = await readRaw(transport, decoder, SERVER_HELLO_BYTES - SERVER_PREFIX_BYTES);
  const serverHello = new Uint8Array(SERVER_HELLO_BYTES);
  serverHello.set(prefix);
  serverHello.set(rest, SERVER_PREFIX_BYTES);
  return serverHello;
}
