/**
 * Buffers the channels of one process share and reuse: big read buffers, plaintext writers and
 * sealed-output chunks. In Deno a fresh ArrayBuffer costs 1-3 µs, more than sealing or opening a
 * small frame, so the hot path takes from these pools instead of allocating per frame. Each pool
 * is bounded; past its bound, buffers go to the collector.
 *
 * Ownership: a buffer taken is the taker's alone until it gives it back; whatever points into it
 * must be copied or finished with before then, since another channel may take it next.
 */

import { ByteWriter } from "../protocol/value.ts";

/** A read that fills the small buffer means more is waiting: read on with this size. */
export const BUSY_READ_BUFFER_BYTES = 16 * 1024;
/** Big read buffers kept for reuse across connections (1 MiB at most). */
const MAX_SPARE_READ_BUFFERS = 64;
const spareReadBuffers: Uint8Array<ArrayBuffer>[] = [];

/** A big read buffer (BUSY_READ_BUFFER_BYTES): a pooled one, or a new one. */
export function takeReadBuffer(): Uint8Array<ArrayBuffer> {
  return spareReadBuffers.pop() ?? new Uint8Array(BUSY_READ_BUFFER_BYTES);
}

export function releaseReadBuffer(buf: Uint8Array<ArrayBuffer>): void {
  if (spareReadBuffers.length < MAX_SPARE_READ_BUFFERS) spareReadBuffers.push(buf);
}

/**
 * Plaintext buffers of sealed turns, reused for later turns of any connection: a busy
 * connection would otherwise allocate, grow and drop one every turn, and an idle one keeps none.
 */
const spareWriters: ByteWriter[] = [];
const MAX_SPARE_WRITERS = 128;
/** A buffer grown past this (for a big image, say) is left to the collector; so the pool holds
 * 8 MiB at the very most. */
const MAX_SPARE_WRITER_BYTES = 64 * 1024;

export function takeWriter(): ByteWriter {
  const w = spareWriters.pop();
  if (!w) return new ByteWriter(512);
  w.truncate(0);
  return w;
}

export function giveBackWriter(w: ByteWriter): void {
  if (spareWriters.length < MAX_SPARE_WRITERS && w.capacity <= MAX_SPARE_WRITER_BYTES) {
    spareWriters.push(w);
  }
}

/**
 * Sealed frames wait in chunks of this size, taken from and given back to a pool shared by all
 * channels: a queue of megabytes is then many equal buffers that are reused, rather than one
 * buffer grown by doubling (up to twice the bytes it holds) and dropped once written, which left
 * the process's resident memory high long after a flood had drained.
 */
export const OUT_CHUNK_BYTES = 64 * 1024;
/** Spare chunks kept (8 MiB at most); past this they go to the collector. */
const MAX_SPARE_CHUNKS = 128;
const spareChunks: ByteWriter[] = [];

/**
 * A queue that starts with a small frame starts in a chunk of this size. A keepalive round seals a
 * PING for every connection in one turn, and each took a 64 KiB chunk: 5,000 idle connections
 * made 320 MB of buffers every 30 s. Most of a chat server's frames are this small.
 */
export const SMALL_CHUNK_BYTES = 2 * 1024;
/** Spare small chunks kept (2 MiB at most). */
const MAX_SPARE_SMALL_CHUNKS = 1024;
const spareSmallChunks: ByteWriter[] = [];

/** Chunks allocated rather than taken from a pool, by size class (tests). */
export const chunksMade = { small: 0, big: 0 };

/**
 * A chunk with room for `size` bytes: a small one when `small` (the first frame of an empty queue)
 * and the frame fits, else a pooled 64 KiB one, or for a larger frame one of its own.
 */
export function takeChunk(size: number, small = false): ByteWriter {
  if (small && size <= SMALL_CHUNK_BYTES) return fromPool(spareSmallChunks, "small");
  if (size > OUT_CHUNK_BYTES) return new ByteWriter(size);
  return fromPool(spareChunks, "big");
}

function fromPool(pool: ByteWriter[], kind: "small" | "big"): ByteWriter {
  const chunk = pool.pop();
  if (!chunk) {
    chunksMade[kind]++;
    return new ByteWriter(kind === "small" ? SMALL_CHUNK_BYTES : OUT_CHUNK_BYTES);
  }
  chunk.truncate(0);
  return chunk;
}

export function giveBackChunk(chunk: ByteWriter): void {
  if (chunk.capacity === OUT_CHUNK_BYTES && spareChunks.length < MAX_SPARE_CHUNKS) {
    spareChunks.push(chunk);
  } else if (
    chunk.capacity === SMALL_CHUNK_BYTES && spareSmallChunks.length < MAX_SPARE_SMALL_CHUNKS
  ) {
    spareSmallChunks.push(chunk);
  }
}
