/**
 * The client platform of a browser: the handshake and the frame cipher over WebCrypto
 * (src/crypto/web/), the async WebChannel (src/transport/web_channel.ts), SHA-256 by
 * crypto.subtle.digest. The connection itself comes from the caller's `dial` (a WebSocket in the
 * web app, TCP in Deno's tests): the platform works over any Transport.
 */

import { subtle } from "../crypto/web/handshake.ts";
import type { Transport } from "../transport/transport.ts";
import { WebChannel } from "../transport/web_channel.ts";
import { initiateWebHandshake } from "../transport/web_handshake_io.ts";
import type { ClientPlatform, Hasher, MessageChannel } from "./platform.ts";

/** A client trusts its server with far more than the server trusts a client (as Deno's). */
const MAX_OUTBOUND_BYTES = 64 * 1024 * 1024;
const MAX_DEPTH = 32;

export type WebDial = (host: string, port: number) => Promise<Transport>;

/**
 * A ClientPlatform on WebCrypto. `dial` reaches the server when ConnectOptions gives no `dial`
 * of its own; a page that always passes ConnectOptions.dial may give one that throws.
 */
export function webPlatform(dial: WebDial): ClientPlatform {
  return {
    dial,
    async secure(transport, { maxFrameBytes, protocolVersion }) {
      const shaken = await initiateWebHandshake(transport, maxFrameBytes, protocolVersion);
      const channel: MessageChannel = await WebChannel.create(
        transport,
        shaken.keys,
        shaken.decoder,
        {
          maxFrameBytes,
          // Room for two of the largest messages, however large the caller made them.
          maxOutboundBytes: Math.max(MAX_OUTBOUND_BYTES, 2 * (maxFrameBytes + 1024)),
          maxDepth: MAX_DEPTH,
        },
      );
      return { channel, serverIdentity: shaken.serverIdentity };
    },
    sha256: webSha256,
    hasher: () => new BufferingHasher(),
  };
}

export async function webSha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest("SHA-256", concat(parts)));
}

/**
 * WebCrypto has no incremental SHA-256: this one copies every update into one growing buffer
 * and digests it at the end. A file therefore costs its size in memory once more (up to twice
 * while the buffer grows) while it is hashed (sending hashes it before the offer, receiving as
 * it arrives): fine for what a browser sends and receives, not for files of gigabytes.
 */
export class BufferingHasher implements Hasher {
  #buf: Uint8Array<ArrayBuffer> | null = new Uint8Array(0);
  #length = 0;

  update(bytes: Uint8Array): void {
    const buf = this.#buf;
    if (buf === null) throw new Error("The hasher has already given its digest");
    // Copied: the caller may reuse its buffer (a file reader's, say) for the next chunk.
    const need = this.#length + bytes.length;
    if (need > buf.length) {
      const grown = new Uint8Array(Math.max(need, 2 * buf.length, 4096));
      grown.set(buf.subarray(0, this.#length));
      this.#buf = grown;
    }
    this.#buf!.set(bytes, this.#length);
    this.#length = need;
  }

  digest(): Promise<Uint8Array> {
    const buf = this.#buf;
    if (buf === null) return Promise.reject(new Error("The hasher has already given its digest"));
    this.#buf = null;
    return webSha256(buf.subarray(0, this.#length));
  }
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  if (parts.length === 1 && parts[0].buffer instanceof ArrayBuffer) {
    return parts[0] as Uint8Array<ArrayBuffer>;
  }
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
