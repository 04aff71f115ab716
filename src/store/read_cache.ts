/**
 * Store reads kept in memory per key. This process owns the KV file, so a cached value stays
 * true until this process changes it, and every change to a key calls forget() once it has
 * committed. A read still in flight when its key is forgotten is not kept.
 */
export class ReadCache<K, V> {
  readonly #entries = new Map<K, Promise<V>>();

  /**
   * `max` entries at most (past it the oldest goes); `keep` says whether a value read is worth
   * keeping (say, not a miss that a stranger could repeat with endless new keys).
   */
  constructor(
    private readonly max: number,
    private readonly keep: (value: V) => boolean = () => true,
  ) {}

  /** The cached value of `key`, or what `read` gives (kept for next time). */
  get(key: K, read: () => Promise<V>): Promise<V> {
    const cached = this.#entries.get(key);
    if (cached) return cached;
    const reading = read();
    this.#entries.set(key, reading);
    const drop = () => {
      if (this.#entries.get(key) === reading) this.#entries.delete(key);
    };
    reading.then((value) => {
      if (!this.keep(value)) drop();
    }, drop);
    if (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value!);
    return reading;
  }

  /** Stores a value known to be current (just written). */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, Promise.resolve(value));
    if (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value!);
  }

  forget(key: K): void {
    this.#entries.delete(key);
  }
}
