/**
 * Duplicate suppression for at-least-once delivery: a message is identified by its sender and
 * the id the sender's client chose. Redeliveries after a reconnect or a server crash are
 * dropped here, so the application sees each message once.
 */

/** Remembered ids; old ones are forgotten first. Redeliveries come soon, so this is plenty. */
const DEFAULT_CAPACITY = 200_000;

export class SeenMessages {
  readonly #seen = new Set<string>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  static key(from: string, id: Uint8Array): string {
    return `${from.toLowerCase()}/${id.toHex()}`;
  }

  /** True the first time a message is seen, false for a duplicate. */
  first(from: string, id: Uint8Array): boolean {
    const key = SeenMessages.key(from, id);
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    if (this.#seen.size > this.capacity) {
      const oldest = this.#seen.values().next().value!;
      this.#seen.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}
