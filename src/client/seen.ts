/**
 * Duplicate suppression for at-least-once delivery: a message is identified by its sender and
 * the id the sender's client chose. Redeliveries after a reconnect or a server crash are
 * dropped here, so the application sees each message once.
 */

/** Remembered ids; old ones are forgotten first. Redeliveries come soon, so this is plenty. */
const DEFAULT_CAPACITY = 200_000;

export class SeenMessages {
  readonly #seen = new Set<string>();
  /** The keys in the order they were seen, as a ring: the next to forget is at #next. */
  readonly #order: string[] = [];
  #next = 0;

  constructor(private readonly capacity = DEFAULT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`SeenMessages needs a whole capacity of at least 1, not ${capacity}`);
    }
  }

  static key(from: string, id: Uint8Array): string {
    return `${from.toLowerCase()}/${id.toHex()}`;
  }

  /** True the first time a message is seen, false for a duplicate. */
  first(from: string, id: Uint8Array): boolean {
    const key = SeenMessages.key(from, id);
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    // A ring rather than the set's own order: taking the set's oldest entry walks past every
    // entry deleted before it, on every message once the set is full.
    if (this.#order.length < this.capacity) {
      this.#order.push(key);
    } else {
      this.#seen.delete(this.#order[this.#next]);
      this.#order[this.#next] = key;
      this.#next = (this.#next + 1) % this.capacity;
    }
    return true;
  }

  /** Whether the message was seen, without noting it. */
  has(from: string, id: Uint8Array): boolean {
    return this.#seen.has(SeenMessages.key(from, id));
  }

  get size(): number {
    return this.#seen.size;
  }
}
