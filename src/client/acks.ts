/**
 * Cumulative acknowledgements (an ACK of seq n acknowledges every message up to n), paced:
 *
 * - the first PASS after a quiet spell is acknowledged at the end of its turn, as before;
 * - while PASS pushes keep coming, at most one ACK per ACK_INTERVAL_MS names the highest seq
 *   seen, unless ACK_EVERY messages wait, which are acknowledged at once.
 *
 * At a steady 200 messages a second a client sent 200 ACKs, and the server read each and wrote
 * the sender's SENT for each: half the socket operations of a message. Paced, one ACK and one
 * SENT write carry several. A message is still acknowledged well within the server's deferral
 * (DEFER_MS, 100), so its inbox row is cancelled rather than written; ACK_EVERY stays far under
 * the server's window (WINDOW_MESSAGES, 512), so a fast inbox flush never waits on the pacing.
 * An ACK lost when the client closes only means a redelivery, which clients drop by message id.
 */

export const ACK_INTERVAL_MS = 20;
export const ACK_EVERY = 64;

export class CumulativeAck {
  /** The highest seq seen, and the highest acknowledged. */
  #seq = 0;
  #sent = 0;
  #sentAt = Number.NEGATIVE_INFINITY;
  #scheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #stopped = false;

  constructor(
    private readonly sendAck: (seq: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  ack(seq: number): void {
    if (seq <= this.#seq || this.#stopped) return;
    this.#seq = seq;
    if (this.#seq - this.#sent >= ACK_EVERY && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#scheduled = false;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    const wait = this.#seq - this.#sent >= ACK_EVERY
      ? 0
      : this.#sentAt + ACK_INTERVAL_MS - this.now();
    // At the end of the turn: every PASS of the turn is in it.
    if (wait <= 0) queueMicrotask(this.#send);
    else this.#timer = setTimeout(this.#send, wait);
  }

  /** Sends a waiting ACK now (before a LOGOUT: it belongs to the session that is ending). */
  flush(): void {
    if (!this.#scheduled) return;
    clearTimeout(this.#timer);
    this.#send();
  }

  /** Starts again for a new session on the same connection, whose seqs start afresh. */
  reset(): void {
    this.flush();
    this.#seq = this.#sent = 0;
    this.#sentAt = Number.NEGATIVE_INFINITY;
  }

  /** No further ACK is sent (the connection is closing); a pending one is dropped. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #send = () => {
    this.#scheduled = false;
    this.#timer = undefined;
    if (this.#stopped || this.#seq <= this.#sent) return;
    this.#sent = this.#seq;
    this.#sentAt = this.now();
    this.sendAck(this.#seq);
  };
}
