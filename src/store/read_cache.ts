/**
 * Store reads kept in memory per key. This process owns the KV file, so a cached value stays
 * true until this process changes it, and every change to a key calls forget() once it has
 * committed. A read still in flight when its key is forgotten is not kept.
 */
export class ReadCache<K, V> {
  /** A read in flight, or its value once it came (a settled promise costs more to hold). */
  readonly #entries = new Map<K, { value: V } | Promise<V>>();

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
    if (cached) return cached instanceof Promise ? cached : Promise.resolve(cached.value);
    const reading = read();
    this.#entries.set(key, reading);
    reading.then((value) => {
      if (this.#entries.get(key) !== reading) return; // forgotten meanwhile
      if (!this.keep(value)) {
        this.#entries.delete(key);
        return;
      }
      this.#entries.set(key, { value });
      // Only a value kept pushes an old one out: misses, however many, evict nothing.
      this.#trim();
    }, () => {
      if (this.#entries.get(key) === reading) this.#entries.delete(key);
    });
    return reading;
  }

  /** Stores a value known to be current (just written). */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value });
    this.#trim();
  }

  #trim(): void {
    while (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value!);
  }

  forget(key: K): void {
    this.#entries.delete(key);
  }
}
