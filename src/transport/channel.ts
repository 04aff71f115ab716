/**
 * An encrypted message channel over one connection (any Transport), shared by server and client.
 *
 * Inbound: `transport.read` into a small reused buffer → FrameDecoder → FrameOpener → messages.
 * Outbound: `send` appends to the plaintext being built in this turn of the event loop; at the
 * end of the turn (turn.ts) it is sealed into one frame, and one writer drains the queue with as
 * few writes as it can. The queue is bounded: a peer that stops reading is cut off instead of
 * growing our memory.
 *
 * Neither direction allocates a buffer per frame in the usual case: frames are opened in place
 * in the read buffer and sealed into pooled buffers. In Deno a fresh ArrayBuffer costs 1-3 µs,
 * which is more than sealing or opening a small frame.
 */

// Deno's fast Latin-1 decoding for every value this channel reads (see latin1_node.ts).
import "../protocol/latin1_node.ts";
import { FrameOpener, FrameSealer } from "../crypto/cipher.ts";
import type { SessionKeys } from "../crypto/handshake.ts";
import type { FrameDecoder } from "../protocol/frame.ts";
import { type DecodedMessages, decodeMessages, writeMessage } from "../protocol/message_codec.ts";
import type { ByteWriter, Value } from "../protocol/value.ts";
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import {
  giveBackChunk,
  giveBackWriter,
  releaseReadBuffer,
  takeChunk,
  takeReadBuffer,
  takeWriter,
} from "./buffer_pools.ts";
import type { OutboundTotal } from "./outbound_total.ts";
import { shutAfterFlush } from "./finish.ts";
import { goneOr, type Transport } from "./transport.ts";
import { afterTurn } from "./turn.ts";

/**
 * An idle connection parks one read on a buffer of this size, so it is small: memory per
 * idle connection is what lets one server hold tens of thousands of them.
 */
export const READ_BUFFER_BYTES = 256;
/**
 * Messages of one turn are packed into frames of about this size. Big enough that a busy
 * connection pays one seal for many messages, small enough to stay under any peer's frame
 * limit (the server's is 64 KiB before login); a larger single message gets its own frame.
 */
export const COALESCE_BYTES = 32 * 1024;

/** A frame's length header and tag. */
const FRAME_OVERHEAD_BYTES = 4 + 16;

export interface ChannelOptions {
  /** Largest message this side will send (it then travels alone in its frame). */
  maxFrameBytes: number;
  /**
   * Sealed bytes allowed to wait for the socket before the peer counts as a slow reader (the
   * start value; setOutboundLimit changes it, at login for instance).
   */
  maxOutboundBytes: number;
  /**
   * A peer with more than OUTBOUND_STALL_BYTES waiting that takes no byte for this long is cut
   * off (a SlowReaderError). Unset: no deadline (the client's side).
   */
  writeStallMs?: number;
  /** Where this channel's waiting bytes are summed with others'; none by default. */
  total?: OutboundTotal;
  /** Nesting limit for decoded values. */
  maxDepth: number;
  /** Values decoded from one frame at most (bounds the work one frame can cost); none if unset. */
  maxValues?: number;
  /** The clock of `lastInbound` and of the stall and finish timers; the system's if unset. */
  clock?: Clock;
}

/**
 * Bytes waiting for one peer past which a write that makes no progress at all within
 * `writeStallMs` closes the connection. Small, so that a peer that never reads is found while it
 * holds little; a slow but live reader takes some bytes at every write and is never cut off.
 */
export const OUTBOUND_STALL_BYTES = 64 * 1024;

/** Thrown into the writer's caller when the outbound queue overflows. */
export class SlowReaderError extends Error {
  override name = "SlowReaderError";
}

export class Channel {
  readonly #transport: Transport;
  readonly #decoder: FrameDecoder;
  readonly #sealer: FrameSealer;
  readonly #opener: FrameOpener;
  readonly #opts: ChannelOptions;
  /** This turn's plaintext; none while nothing waits, so an idle connection holds no buffer. */
  #pending: ByteWriter | null = null;
  #scheduled = false;
  #corked = 0;
  /**
   * Sealed frames waiting for the socket, back to back in pooled chunks (a small one first)
   * (none while nothing waits). The chunks being written are taken off first, so new frames go
   * to fresh ones.
   */
  #out: ByteWriter[] | null = null;
  /** Bytes sealed and not yet handed to the socket (waiting, or in the write under way). */
  #outBytes = 0;
  /** The most #outBytes may reach before the peer counts as a slow reader. */
  #maxOutBytes: number;
  /** The limit last set; #maxOutBytes stays above it while more than it still waits. */
  #targetOutBytes: number;
  #writing: Promise<void> | null = null;
  /** Set while a write is under way with more than OUTBOUND_STALL_BYTES waiting. */
  #stallTimer: TimerHandle | undefined = undefined;
  #closed = false;
  /** Set by `finish`: input is no longer decoded, only read and dropped until the peer closes. */
  #finishing = false;
  /** Closes the connection when `finish`'s wait for the peer's close runs out. */
  #finishTimer: TimerHandle | undefined = undefined;
  readonly #clock: Clock;
  /** When bytes last arrived from the peer (on the options' clock), for idle detection. */
  lastInbound: number;
  /**
   * Reads that brought bytes. The keepalive notes it when it sends a PING: a PING is answered
   * once it has changed, however close together the two happened.
   */
  reads = 0;
  /** Called once when the channel closes for a reason of its own (write error, slow reader). */
  onFault: (error: Error) => void = () => {};

  constructor(
    transport: Transport,
    keys: SessionKeys,
    decoder: FrameDecoder,
    opts: ChannelOptions,
  ) {
    this.#transport = transport;
    this.#decoder = decoder;
    this.#sealer = new FrameSealer(keys.send);
    this.#opener = new FrameOpener(keys.receive);
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.lastInbound = this.#clock.now();
    this.#maxOutBytes = this.#targetOutBytes = opts.maxOutboundBytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The largest frame plaintext accepted from the peer from now on. */
  setInboundLimit(maxPlaintext: number): void {
    this.#decoder.setMaxPlaintext(maxPlaintext);
  }

  /**
   * The most sealed bytes that may wait for the peer from now on (small before login, so that
   * an anonymous peer that never reads cannot make us hold much). A limit below what waits
   * already takes effect once the queue has drained to it: output queued under the old limit
   * (a logged-in session's messages before its LOGOUT's OK, say) is not the peer's fault.
   */
  setOutboundLimit(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 2 * COALESCE_BYTES) {
      throw new RangeError(`An outbound limit of ${bytes} bytes leaves no room for a frame`);
    }
    this.#targetOutBytes = bytes;
    this.#maxOutBytes = Math.max(bytes, Math.min(this.#maxOutBytes, this.#outBytes + bytes));
  }

  /** Lowers the limit to its target once the queue has drained below it. */
  #settleLimit(): void {
    if (this.#maxOutBytes > this.#targetOutBytes && this.#outBytes <= this.#targetOutBytes) {
      this.#maxOutBytes = this.#targetOutBytes;
    }
  }

  /** Sealed bytes waiting for this peer. */
  get outboundBytes(): number {
    return this.#outBytes;
  }

  /** Queues one message; it leaves in this turn's frame. Ignored once closed. */
  send(type: number, id: number, body: Value): void {
    if (this.#closed) return;
    const pending = this.#pending ??= takeWriter();
    const before = pending.length;
    try {
      writeMessage(pending, type, id, body);
    } catch (e) {
      this.#drop(pending, before); // no half-written message may go out with the others
      throw e;
    }
    const added = pending.length - before;
    if (added > this.#opts.maxFrameBytes) {
      this.#drop(pending, before);
      throw new RangeError(`Message of ${added} bytes exceeds the frame limit`);
    }
    if (before > 0 && pending.length > COALESCE_BYTES) {
      // Seal what came before this message, then carry the message into the next frame.
      const all = pending.view();
      const next = this.#pending = takeWriter();
      next.bytes(all.subarray(before));
      this.#seal(all.subarray(0, before));
      giveBackWriter(pending);
    }
    if (!this.#scheduled && this.#corked === 0) {
      this.#scheduled = true;
      afterTurn(this.#sealScheduled);
    }
  }

  /** Takes back the message that starts at `before` in this turn's plaintext. */
  #drop(pending: ByteWriter, before: number): void {
    pending.truncate(before);
    if (before === 0) {
      this.#pending = null;
      giveBackWriter(pending);
    }
  }

  /**
   * Holds outgoing messages until the matching uncork, so that the replies to one inbound
   * frame leave together in one outbound frame.
   */
  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked > 0 && --this.#corked === 0 && !this.#scheduled && this.#pending) {
      this.#scheduled = true;
      afterTurn(this.#sealScheduled);
    }
  }

  readonly #sealScheduled = () => this.#sealPending();

  #sealPending(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    if (this.#closed || !pending || pending.length === 0) return;
    this.#pending = null;
    try {
      // Sealing reads the writer's bytes in place, before the writer goes back to the pool.
      this.#seal(pending.view());
    } finally {
      giveBackWriter(pending);
    }
  }

  /** Seals one frame onto the outbound buffer and makes sure a writer drains it. */
  #seal(plaintext: Uint8Array): void {
    const size = plaintext.length + FRAME_OVERHEAD_BYTES;
    const chunks = this.#out ??= [];
    let out = chunks.at(-1);
    if (out === undefined || out.length + size > out.capacity) {
      out = takeChunk(size, chunks.length === 0);
      chunks.push(out);
    }
    const before = out.length;
    try {
      this.#sealer.sealInto(plaintext, out.claim(size));
    } catch (e) {
      out.truncate(before);
      this.#fault(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.#outBytes += size;
    this.#opts.total?.add(size);
    if (this.#outBytes > this.#maxOutBytes) {
      this.#fault(new SlowReaderError("The peer is not reading; its outbound queue is full"));
      return;
    }
    this.#writing ??= this.#drain();
    this.#armStall();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#out !== null && !this.#closed) {
        // Every frame sealed by now leaves, a chunk per write.
        const chunks = this.#out;
        this.#out = null;
        for (const chunk of chunks) {
          const batch = chunk.view();
          let written = 0;
          while (written < batch.length) {
            this.#armStall();
            written += await this.#transport.write(batch.subarray(written));
            this.#progress();
          }
          // Closed meanwhile: close() has released every byte already.
          if (this.#closed) return;
          this.#outBytes -= batch.length;
          this.#opts.total?.release(batch.length);
          this.#settleLimit();
          giveBackChunk(chunk);
        }
      }
    } catch (e) {
      const error = goneOr(this.#transport, e);
      this.#fault(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.#writing = null;
    }
  }

  /**
   * With more than OUTBOUND_STALL_BYTES waiting and a write under way, starts the stall timer:
   * if that write has taken nothing when it fires, the peer does not read, and the channel
   * closes (SlowReaderError). Armed from #seal too, because a write begun while little waited
   * may be the one that never ends.
   */
  #armStall(): void {
    const stallMs = this.#opts.writeStallMs;
    if (
      stallMs === undefined || this.#stallTimer !== undefined || this.#writing === null ||
      this.#outBytes <= OUTBOUND_STALL_BYTES || this.#closed
    ) return;
    this.#stallTimer = this.#clock.setTimer(() => {
      this.#stallTimer = undefined;
      this.#fault(
        new SlowReaderError(`The peer took no byte of ${this.#outBytes} waiting in ${stallMs} ms`),
      );
    }, stallMs);
  }

  /** A write took bytes: the peer reads. */
  #progress(): void {
    if (this.#stallTimer === undefined) return;
    this.#clock.clearTimer(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  /** Resolves once everything sent so far has been handed to the socket. */
  async flush(): Promise<void> {
    this.#sealPending();
    while (this.#writing) await this.#writing;
  }

  /**
   * Hands the decoded messages of each frame to `onFrame`, in order, until the peer closes; a
   * promise from `onFrame` is awaited before the next frame. Throws FrameSizeError or
   * FrameAuthError for a bad frame; the caller then closes the channel. A plain loop rather
   * than an async generator: an idle connection then parks fewer objects on its pending read.
   */
  async receive(onFrame: (decoded: DecodedMessages) => void | Promise<void>): Promise<void> {
    const idle = new Uint8Array(READ_BUFFER_BYTES);
    let buf = idle;
    let full = false;
    while (!this.#closed) {
      let frame;
      while ((frame = this.#decoder.readFrame()) !== null) {
        if (this.#finishing) break; // what comes after the last answer is not even opened
        // Opened over its own bytes and decoded at once: nothing decoded points into them, so
        // the plaintext (a password, say) is wiped before its buffer can go to another channel.
        const plaintext = this.#opener.openInPlace(frame);
        const values: number[] = [];
        const decoded = decodeMessages(
          plaintext,
          this.#opts.maxDepth,
          this.#opts.maxValues,
          values,
        );
        decoded.values = values;
        plaintext.fill(0);
        const done = onFrame(decoded);
        if (done) await done;
        if (this.#closed) return;
      }
      if (this.#finishing) break;
      // What is left of the last read is copied before its buffer is read into again (or goes
      // back to the pool, where another connection may take it).
      this.#decoder.keep();
      // A big buffer while reads come back full and a frame is still incomplete: its bytes are
      // on their way. Otherwise the small one, so that a connection that goes quiet after a burst
      // (even one that ended exactly on a buffer's end) parks its read on 256 bytes. Big buffers
      // go back to a shared pool rather than to the garbage collector: a connection that is busy
      // in bursts would otherwise allocate one per burst.
      if (full && this.#decoder.buffered > 0) {
        if (buf === idle) buf = takeReadBuffer();
      } else if (buf !== idle) {
        releaseReadBuffer(buf);
        buf = idle;
      }
      let n: number | null;
      try {
        n = await this.#transport.read(buf);
      } catch (e) {
        if (this.#closed || this.#transport.isGone(e)) return;
        throw e;
      }
      if (n === null) break;
      this.lastInbound = this.#clock.now();
      this.reads++;
      full = n === buf.length;
      // Read in place: the frames that lie whole in this read are opened straight from `buf`.
      this.#decoder.lend(buf.subarray(0, n));
    }
    if (buf !== idle) releaseReadBuffer(buf);
    if (this.#finishing) await this.#discardInput();
  }

  /**
   * Ends the connection without losing what was sent (finish.ts says why): input stops being
   * decoded; the output is given at most `flushMs` to reach the socket; then the sending side is
   * shut (FIN) and what the peer still sends is read and dropped until it closes, for at most
   * `drainMs`. Resolves once the output has left (or the flush gave up); the channel closes
   * later, when the peer has closed, the drain time has passed, or `receive` has ended.
   */
  async finish(flushMs: number, drainMs: number): Promise<void> {
    if (this.#closed || this.#finishing) return;
    this.#finishing = true;
    this.#finishTimer = await shutAfterFlush(this, this.#transport, this.#clock, flushMs, drainMs);
  }

  /** While finishing: reads and drops input until the peer closes (or `close` ends the wait). */
  async #discardInput(): Promise<void> {
    const buf = takeReadBuffer();
    try {
      while (!this.#closed) {
        if (await this.#transport.read(buf) === null) return;
      }
    } catch (e) {
      if (!this.#closed && !this.#transport.isGone(e)) throw e;
    } finally {
      releaseReadBuffer(buf);
    }
  }

  #fault(error: Error): void {
    if (this.#closed) return;
    this.close();
    this.onFault(error);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#progress(); // no stall timer outlives the channel
    this.#out = null;
    this.#clock.clearTimer(this.#finishTimer);
    this.#opts.total?.release(this.#outBytes);
    this.#outBytes = 0;
    this.#transport.close();
  }
}
