/**
 * Cumulative acknowledgements: one ACK per tick, naming the highest seq seen, however many PASS
 * pushes arrived in it (an ACK of seq n acknowledges every message up to n).
 */
export class CumulativeAck {
  #seq = 0;
  #scheduled = false;

  constructor(private readonly sendAck: (seq: number) => void) {}

  ack(seq: number): void {
    if (seq <= this.#seq) return;
    this.#seq = seq;
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.sendAck(this.#seq);
    });
  }
}
