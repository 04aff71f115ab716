/**
 * What the client library needs from where it runs. Deno (the terminal client, the tests) and a
 * browser give different answers: TCP or a WebSocket, node:crypto or OpenSSL or WebCrypto. The
 * library itself (core.ts and what it imports) stays free of `node:` and `Deno.` so that the
 * same code runs in both; client.ts installs Deno's platform, the web app its own.
 */

import type { DecodedMessages } from "../protocol/message_codec.ts";
import type { Value } from "../protocol/value.ts";
import type { Transport } from "../transport/transport.ts";

/** The encrypted message stream the client talks over: transport/channel.ts's Channel fits it. */
export interface MessageChannel {
  readonly closed: boolean;
  /** Queues one message; it leaves at the end of the turn with the others. */
  send(type: number, id: number, body: Value): void;
  /** Hands over each frame's messages in order until the connection ends (then resolves). */
  receive(onFrame: (decoded: DecodedMessages) => void | Promise<void>): Promise<void>;
  /** Resolves once everything queued so far has been handed to the transport. */
  flush(): Promise<void>;
  /** Sends what waits, shuts the sending side and drops the peer's input until it closes. */
  finish(flushMs: number, drainMs: number): Promise<void>;
  close(): void;
}

export interface SecureOptions {
  maxFrameBytes: number;
  /** The protocol version to offer (tests offer others to see a refusal). */
  protocolVersion?: number;
}

/** A finished handshake: the channel, and the server's identity key for the caller to pin. */
export interface Secured {
  channel: MessageChannel;
  serverIdentity: Uint8Array;
}

/** An incremental SHA-256 (one may buffer what it is given when its platform cannot stream). */
export interface Hasher {
  update(bytes: Uint8Array): void;
  digest(): Promise<Uint8Array>;
}

export interface ClientPlatform {
  /** Reaches host:port when ConnectOptions gives no `dial` of its own. */
  dial(host: string, port: number): Promise<Transport>;
  /** Runs the handshake over `transport` and returns the channel on top of it. */
  secure(transport: Transport, opts: SecureOptions): Promise<Secured>;
  sha256(...parts: Uint8Array[]): Promise<Uint8Array>;
  hasher(): Hasher;
}

let installed: ClientPlatform | null = null;

/** Sets the platform for connections that do not name one (at start-up, once). */
export function useClientPlatform(platform: ClientPlatform): void {
  installed = platform;
}

export function clientPlatform(): ClientPlatform {
  if (installed === null) {
    throw new Error(
      "No client platform: import src/client/client.ts (Deno) or install one with useClientPlatform",
    );
  }
  return installed;
}

/** Equal bytes, compared in time that depends only on the lengths. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
