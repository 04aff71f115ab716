/**
 * Sealed bytes waiting for the socket, summed over the channels that share it (a server's): what
 * a sender that fans out to many (the world room) waits on, so that its flood is held back at
 * its own connection instead of in every recipient's queue.
 */
export class OutboundTotal {
  #bytes = 0;
  /** Callers of room() waiting for the total to fall to their mark. */
  #waiters: { mark: number; wake: () => void }[] = [];

  get bytes(): number {
    return this.#bytes;
  }

  /** Resolves once the total is at most `mark`. */
  room(mark: number): Promise<void> {
    if (this.#bytes <= mark) return Promise.resolve();
    return new Promise((wake) => this.#waiters.push({ mark, wake }));
  }

  add(bytes: number): void {
    this.#bytes += bytes;
  }

  release(bytes: number): void {
    this.#bytes -= bytes;
    if (this.#bytes < 0) throw new Error(`Outbound bytes went negative: ${this.#bytes}`);
    if (this.#waiters.length === 0) return;
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) {
      if (this.#bytes <= w.mark) w.wake();
      else this.#waiters.push(w);
    }
  }
}
