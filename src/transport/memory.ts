/**
 * Two connected transports in one process, for tests and the simulation: no socket, no timer,
 * every wait a promise, so that what happens depends only on the order of calls.
 *
 * It behaves like a TCP connection where that matters to the frame session:
 * - each direction holds at most `capacity` unread bytes; a write takes what fits (a partial
 *   write) and waits while nothing fits, as a write to a full socket buffer does;
 * - closeWrite is a FIN: the peer reads what was written, then null;
 * - close with unread input is a reset, as the kernel's RST: the peer's reads fail
 *   (ConnectionGone) and what it had not yet read is lost, as what is still in flight is over a
 *   real network (Linux on loopback still hands over what had reached the peer's socket);
 *   otherwise the peer reads the rest, then null. Either way the peer's writes fail from then on (a TCP write may still succeed
 *   once before the RST comes back; this pair fails at once);
 * - after close, this side's reads and writes fail, including the ones under way.
 */

import { ConnectionGone, type PeerAddress, type Transport } from "./transport.ts";

/** Unread bytes allowed per direction when the caller names no capacity. */
export const MEMORY_PIPE_BYTES = 64 * 1024;

/** One direction: what one side wrote and the other has not read yet. */
class Pipe {
  /** Copies of the written bytes; the first is read from `head` on. */
  #chunks: Uint8Array[] = [];
  #head = 0;
  /** Bytes in #chunks past #head. */
  buffered = 0;
  /** The writer shut this direction: once the buffered bytes are read, reads return null. */
  ended = false;
  /** The reader closed: writes fail. */
  readerGone = false;
  /** Reset by the reader's side: reads fail, and the buffered bytes are lost. */
  reset = false;
  #waiters: (() => void)[] = [];

  constructor(readonly capacity: number) {}

  /** Resolves at the next change of this direction's state. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  put(bytes: Uint8Array): void {
    this.#chunks.push(bytes.slice());
    this.buffered += bytes.length;
    this.notify();
  }

  /** Moves up to `buf.length` buffered bytes into `buf`; returns how many. */
  take(buf: Uint8Array): number {
    let n = 0;
    while (n < buf.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const count = Math.min(chunk.length - this.#head, buf.length - n);
      buf.set(chunk.subarray(this.#head, this.#head + count), n);
      n += count;
      this.#head += count;
      if (this.#head === chunk.length) {
        this.#chunks.shift();
        this.#head = 0;
      }
    }
    this.buffered -= n;
    if (this.buffered < 0 || (this.buffered === 0) !== (this.#chunks.length === 0)) {
      throw new Error(`Memory pipe bookkeeping broken: ${this.buffered} bytes buffered`);
    }
    this.notify();
    return n;
  }

  drop(): void {
    this.#chunks = [];
    this.#head = 0;
    this.buffered = 0;
  }
}

export class MemoryTransport implements Transport {
  readonly peer: PeerAddress;
  readonly #in: Pipe;
  readonly #out: Pipe;
  #closed = false;

  constructor(peer: PeerAddress, input: Pipe, output: Pipe) {
    this.peer = peer;
    this.#in = input;
    this.#out = output;
  }

  /** Bytes the peer wrote that this side has not read. */
  get unread(): number {
    return this.#in.buffered;
  }

  /** Bytes this side wrote that the peer has not read. */
  get unsent(): number {
    return this.#out.buffered;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async read(buf: Uint8Array): Promise<number | null> {
    const pipe = this.#in;
    while (true) {
      if (this.#closed) throw new ConnectionGone("The connection is closed");
      if (pipe.reset) throw new ConnectionGone("The peer reset the connection");
      if (pipe.buffered > 0) {
        if (buf.length === 0) return 0;
        return pipe.take(buf);
      }
      if (pipe.ended) return null;
      await pipe.changed();
    }
  }

  async write(bytes: Uint8Array): Promise<number> {
    const pipe = this.#out;
    while (true) {
      if (this.#closed) throw new ConnectionGone("The connection is closed");
      if (pipe.ended) throw new ConnectionGone("The sending side is shut");
      if (pipe.readerGone) throw new ConnectionGone("The peer closed the connection");
      if (bytes.length === 0) return 0;
      const room = pipe.capacity - pipe.buffered;
      if (room > 0) {
        const n = Math.min(room, bytes.length);
        pipe.put(bytes.subarray(0, n));
        return n;
      }
      await pipe.changed();
    }
  }

  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(new ConnectionGone("The connection is closed"));
    this.#out.ended = true;
    this.#out.notify();
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const input = this.#in;
    const output = this.#out;
    if (input.buffered > 0) {
      // Closed with input unread: the peer is reset and loses what it had not read.
      output.reset = true;
      output.drop();
    }
    output.ended = true;
    input.readerGone = true;
    input.drop();
    input.notify();
    output.notify();
  }

  isGone(error: unknown): boolean {
    return error instanceof ConnectionGone;
  }
}

export interface MemoryPairOptions {
  /** Unread bytes each direction holds before a write waits; MEMORY_PIPE_BYTES by default. */
  capacity?: number;
  /** The address each side sees for its peer: [a's peer (b), b's peer (a)]. */
  addresses?: [PeerAddress, PeerAddress];
}

/** Two transports joined to each other: what `a` writes `b` reads, and the other way round. */
export function memoryPair(options: MemoryPairOptions = {}): [MemoryTransport, MemoryTransport] {
  const capacity = options.capacity ?? MEMORY_PIPE_BYTES;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(`A memory pipe of ${capacity} bytes holds nothing`);
  }
  const [toB, toA] = options.addresses ??
    [{ hostname: "memory", port: 2 }, { hostname: "memory", port: 1 }];
  const aToB = new Pipe(capacity);
  const bToA = new Pipe(capacity);
  return [new MemoryTransport(toB, bToA, aToB), new MemoryTransport(toA, aToB, bToA)];
}
