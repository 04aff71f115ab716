/**
 * An encrypted message channel over any Transport with WebCrypto's AES-256-GCM, for browsers:
 * the client's MessageChannel (src/client/platform.ts), as channel.ts's Channel is under Deno,
 * with the same frames on the wire.
 *
 * WebCrypto is async, and a frame's counter is not sent, so order is everything: outbound, one
 * pump seals a frame, writes it whole, then takes the next, so seals and writes never interleave;
 * inbound, one loop opens a frame, hands its messages over, then reads on. Messages sent in one
 * turn of the event loop leave in one frame, as with Channel.
 */

import type { SessionKeys } from "../crypto/handshake_layout.ts";
import { WebFrameOpener, WebFrameSealer } from "../crypto/web/cipher.ts";
import { invariant } from "../invariant/invariant.ts";
import { FRAME_HEADER_BYTES, type FrameDecoder, TAG_BYTES } from "../protocol/frame.ts";
import { type DecodedMessages, decodeMessages, writeMessage } from "../protocol/message_codec.ts";
import { ByteWriter, type Value } from "../protocol/value.ts";
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { shutAfterFlush } from "./finish.ts";
import { goneOr, type Transport, writeAll } from "./transport.ts";

/**
 * Messages of one turn are packed into frames of about this size (as channel.ts's COALESCE_BYTES,
 * which this module cannot import: channel.ts loads node:buffer). A larger message travels alone.
 */
export const WEB_COALESCE_BYTES = 32 * 1024;
/**
 * Reads go into one buffer of this size per connection. A browser holds a handful of
 * connections, so there is no reason to park small reads as the server's Channel does.
 */
const READ_BUFFER_BYTES = 64 * 1024;
const FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + TAG_BYTES;

export interface WebChannelOptions {
  /** Largest message this side will send (it then travels alone in its frame). */
  maxFrameBytes: number;
  /**
   * Frame bytes allowed to wait (sealed or not) for the transport before the channel gives up
   * with an OutboundOverflowError: a bound on memory if the peer stops reading.
   */
  maxOutboundBytes: number;
  /** Nesting limit for decoded values. */
  maxDepth: number;
  /** The clock of `finish`'s timers; the system's if unset. */
  clock?: Clock;
}

/** The outbound queue went past its limit: the peer does not read (or the caller sent too much). */
export class OutboundOverflowError extends Error {
  override name = "OutboundOverflowError";
}

export class WebChannel {
  readonly #transport: Transport;
  readonly #decoder: FrameDecoder;
  readonly #sealer: WebFrameSealer;
  readonly #opener: WebFrameOpener;
  readonly #opts: WebChannelOptions;
  readonly #clock: Clock;
  /** Frames of this turn: the largest plaintext with more than one message in it. */
  readonly #coalesce: number;
  /** This turn's plaintext; none while nothing waits. */
  #pending: ByteWriter | null = null;
  #scheduled = false;
  /** Plaintexts of whole frames, in the order they must be sealed and written. */
  #queue: Uint8Array[] = [];
  /** Frame bytes queued or in the pump, not yet handed to the transport. */
  #queuedBytes = 0;
  #pumping: Promise<void> | null = null;
  #closed = false;
  /** Set by `finish`: input is no longer opened, only read and dropped until the peer closes. */
  #finishing = false;
  #finishTimer: TimerHandle | undefined = undefined;
  /** Why the channel closed on its own (a write failed, the queue overflowed); receive throws it. */
  #fault: Error | null = null;
  /** Called once when the channel closes for a reason of its own. */
  onFault: (error: Error) => void = () => {};

  private constructor(
    transport: Transport,
    sealer: WebFrameSealer,
    opener: WebFrameOpener,
    decoder: FrameDecoder,
    opts: WebChannelOptions,
  ) {
    if (
      opts.maxFrameBytes < 1 || opts.maxOutboundBytes < opts.maxFrameBytes + FRAME_OVERHEAD_BYTES
    ) {
      throw new RangeError("The outbound limit must hold at least one frame");
    }
    this.#transport = transport;
    this.#sealer = sealer;
    this.#opener = opener;
    this.#decoder = decoder;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#coalesce = Math.min(WEB_COALESCE_BYTES, opts.maxFrameBytes);
  }

  /** A channel with `keys` over `transport`; `decoder` holds what the handshake read past. */
  static async create(
    transport: Transport,
    keys: SessionKeys,
    decoder: FrameDecoder,
    opts: WebChannelOptions,
  ): Promise<WebChannel> {
    const [sealer, opener] = await Promise.all([
      WebFrameSealer.create(keys.send),
      WebFrameOpener.create(keys.receive),
    ]);
    return new WebChannel(transport, sealer, opener, decoder, opts);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frame bytes waiting for the transport (sealed or not). */
  get outboundBytes(): number {
    return this.#queuedBytes;
  }

  /** Queues one message; it leaves in this turn's frame. Ignored once closed. */
  send(type: number, id: number, body: Value): void {
    if (this.#closed) return;
    const pending = this.#pending ??= new ByteWriter();
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
    if (before > 0 && pending.length > this.#coalesce) {
      // What came before this message is a frame; the message starts the next one. The old
      // writer is dropped, so its bytes are the frame's without a copy.
      const all = pending.view();
      const next = this.#pending = new ByteWriter(Math.max(256, added));
      next.bytes(all.subarray(before));
      this.#enqueue(all.subarray(0, before));
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      // A task, not a microtask: everything sent in this turn goes out in one frame.
      setTimeout(this.#endOfTurn, 0);
    }
  }

  /** Takes back the message that starts at `before` in this turn's plaintext. */
  #drop(pending: ByteWriter, before: number): void {
    pending.truncate(before);
    if (before === 0) this.#pending = null;
  }

  readonly #endOfTurn = () => {
    this.#scheduled = false;
    this.#cutPending();
  };

  /** This turn's messages become a frame in the queue. */
  #cutPending(): void {
    const pending = this.#pending;
    this.#pending = null;
    if (this.#closed || !pending || pending.length === 0) return;
    this.#enqueue(pending.view());
  }

  #enqueue(plaintext: Uint8Array): void {
    invariant(
      plaintext.length > 0 && plaintext.length <= this.#opts.maxFrameBytes,
      "a queued frame is not empty and within the frame limit",
    );
    this.#queue.push(plaintext);
    this.#queuedBytes += plaintext.length + FRAME_OVERHEAD_BYTES;
    if (this.#queuedBytes > this.#opts.maxOutboundBytes) {
      this.#failWith(
        new OutboundOverflowError(
          `${this.#queuedBytes} bytes wait for the connection, more than the limit of ` +
            `${this.#opts.maxOutboundBytes}`,
        ),
      );
      return;
    }
    // The pump awaits before it can end (the queue is not empty), so it clears #pumping after
    // this assignment, in the same step as it finds the queue empty: no frame can be queued in
    // between and wait for a pump that has already ended.
    this.#pumping ??= this.#pump();
  }

  /** Seals and writes the queued frames one at a time, in order, until the queue is empty. */
  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const plaintext = this.#queue.shift()!;
        const counter = this.#sealer.counter;
        const frame = await this.#sealer.seal(plaintext);
        // One seal at a time: the frame just sealed took the counter that was next.
        invariant(this.#sealer.counter === counter + 1, "frames are sealed one at a time");
        plaintext.fill(0); // a password, say, stays no longer than it must
        if (this.#closed) return;
        await writeAll(this.#transport, frame);
        if (this.#closed) return;
        this.#queuedBytes -= frame.length;
        invariant(this.#queuedBytes >= 0, "queued frame bytes never go below zero");
      }
    } catch (e) {
      const error = goneOr(this.#transport, e);
      this.#failWith(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.#pumping = null;
    }
  }

  /** Resolves once everything sent so far has been handed to the transport. */
  async flush(): Promise<void> {
    this.#cutPending();
    while (this.#pumping) await this.#pumping;
  }

  /**
   * Hands the decoded messages of each frame to `onFrame`, in order, until the peer closes; a
   * promise from `onFrame` is awaited before the next frame. Throws FrameSizeError or
   * FrameAuthError for a bad frame (the channel is closed then), or the error that closed the
   * channel on its own (a failed write, an overflow).
   */
  async receive(onFrame: (decoded: DecodedMessages) => void | Promise<void>): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    try {
      while (!this.#closed && !this.#finishing) {
        let frame;
        while (!this.#finishing && (frame = this.#decoder.readFrame()) !== null) {
          const plaintext = await this.#opener.open(frame);
          if (this.#closed || this.#finishing) break;
          const done = onFrame(decodeMessages(plaintext, this.#opts.maxDepth));
          if (done) await done;
          if (this.#closed) break;
        }
        if (this.#closed || this.#finishing) break;
        const n = await this.#read(buf);
        if (n === null) break;
        this.#decoder.push(buf.subarray(0, n));
      }
      if (this.#finishing) {
        // What comes after the last answer is read and dropped until the peer closes.
        while (!this.#closed && await this.#read(buf) !== null);
      }
    } catch (e) {
      this.close(); // a frame that fails ends the connection, whoever reads it
      throw e;
    }
    if (this.#fault) throw this.#fault;
  }

  /** A read; null at the end of the input, or once the channel is closed or the peer gone. */
  async #read(buf: Uint8Array): Promise<number | null> {
    try {
      return await this.#transport.read(buf);
    } catch (e) {
      if (this.#closed || this.#transport.isGone(e)) return null;
      throw e;
    }
  }

  /**
   * Ends the connection without losing what was sent, as Channel.finish: the output is given at
   * most `flushMs` to reach the transport, then the sending side is shut and what the peer still
   * sends is read and dropped until it closes, for at most `drainMs`.
   */
  async finish(flushMs: number, drainMs: number): Promise<void> {
    if (this.#closed || this.#finishing) return;
    this.#finishing = true;
    this.#finishTimer = await shutAfterFlush(this, this.#transport, this.#clock, flushMs, drainMs);
  }

  #failWith(error: Error): void {
    if (this.#closed) return;
    this.#fault = error;
    this.close();
    this.onFault(error);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearTimer(this.#finishTimer);
    this.#pending = null;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#transport.close();
  }
}
