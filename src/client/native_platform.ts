/**
 * The client platform under Deno: TCP, the handshake over crypto/keys.ts (node:crypto or OpenSSL)
 * and the shared Channel, which the server also runs.
 */

import * as nc from "node:crypto";
import { sha256 } from "../crypto/keys.ts";
import { Channel } from "../transport/channel.ts";
import { initiateHandshake } from "../transport/handshake_io.ts";
import { TcpTransport } from "../transport/tcp.ts";
import type { ClientPlatform } from "./platform.ts";

/** A client trusts its server with far more than the server trusts a client. */
const MAX_OUTBOUND_BYTES = 64 * 1024 * 1024;
const MAX_DEPTH = 32;

export const nativePlatform: ClientPlatform = {
  dial: async (host, port) => new TcpTransport(await Deno.connect({ hostname: host, port })),
  async secure(transport, { maxFrameBytes, protocolVersion }) {
    const shaken = await initiateHandshake(transport, maxFrameBytes, protocolVersion);
    const channel = new Channel(transport, shaken.keys, shaken.decoder, {
      maxFrameBytes,
      maxOutboundBytes: MAX_OUTBOUND_BYTES,
      maxDepth: MAX_DEPTH,
    });
    return { channel, serverIdentity: shaken.serverIdentity };
  },
  sha256: (...parts) => Promise.resolve(sha256(...parts)),
  hasher() {
    const h = nc.createHash("sha256");
    return {
      update: (bytes) => void h.update(bytes),
      digest: () => Promise.resolve(new Uint8Array(h.digest())),
    };
  },
};
