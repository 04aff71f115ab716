/**
 * A byte stream to one peer, as the frame session (channel.ts) and the handshake (handshake_io.ts)
 * need it, and nothing more: TCP is one implementation (tcp.ts), an in-memory pair another
 * (memory.ts); a WebSocket would be a third.
 *
 * Shaped like a socket rather than like a stream of chunks: the caller reads into its own buffer,
 * so that an idle connection parks one small read and a busy one allocates nothing per frame.
 */

/** Where the peer is, for logs and per-address limits. */
export interface PeerAddress {
  readonly hostname: string;
  readonly port: number;
}

export interface Transport {
  readonly peer: PeerAddress;
  /**
   * Reads into `buf` (at most its length, at least one byte); resolves to the count, or to null
   * once the peer has shut its sending side (or closed) and every byte before that was read.
   * One read at a time.
   */
  read(buf: Uint8Array): Promise<number | null>;
  /**
   * Hands bytes to the peer; resolves to how many were taken, which may be fewer than given
   * (then the caller writes the rest). The bytes are copied or sent before it resolves: the
   * caller may reuse `bytes` afterwards. One write at a time.
   */
  write(bytes: Uint8Array): Promise<number>;
  /**
   * Shuts the sending side (TCP's FIN): the peer reads what was written, then null. Reading on
   * goes on; writing afterwards fails.
   */
  closeWrite(): Promise<void>;
  /** Closes both sides; a read or write under way fails. Safe to call more than once. */
  close(): void;
  /**
   * Whether an error from read, write or closeWrite means only that the connection is gone
   * (reset by the peer, closed under us): no fault of anyone's, nothing to log as a failure.
   * Asked on the error path only, so that an implementation need not wrap every read in a
   * promise of its own to translate its platform's errors.
   */
  isGone(error: unknown): boolean;
}

/** The connection is gone (reset, closed): what callers of a transport see, whatever its kind. */
export class ConnectionGone extends Error {
  override name = "ConnectionGone";
}

/**
 * `error` as a ConnectionGone if `transport` says it only means the connection is gone
 * (keeping its message, and the original as cause); otherwise as it is.
 */
export function goneOr(transport: Transport, error: unknown): unknown {
  if (error instanceof ConnectionGone || !transport.isGone(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ConnectionGone(message, { cause: error });
}

/** Writes all of `bytes`, looping over partial writes. */
export async function writeAll(
  to: { write(bytes: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await to.write(bytes.subarray(written));
}
