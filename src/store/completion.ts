/**
 * The end of some store work, such as a message's rows becoming durable, told to listeners.
 * Not a promise: every chat message makes one, and a listener object is one allocation where
 * a chain of promises and closures is several, all of which live as long as the message waits.
 */

export interface CompletionListener {
  /** Called once: with null when the work is done, with the error when it failed. */
  settled(error: Error | null): void;
}

export class Completion {
  #settled = false;
  #error: Error | null = null;
  /** One listener, or several in the rare case that more than one waits. */
  #listeners: CompletionListener | CompletionListener[] | null = null;

  /** A completion that is done already. */
  static done(): Completion {
    const c = new Completion();
    c.resolve();
    return c;
  }

  get isSettled(): boolean {
    return this.#settled;
  }

  /** Tells `listener` how the work ended: at once if it has ended already. */
  listen(listener: CompletionListener): void {
    if (this.#settled) {
      listener.settled(this.#error);
      return;
    }
    const now = this.#listeners;
    if (now === null) this.#listeners = listener;
    else if (Array.isArray(now)) now.push(listener);
    else this.#listeners = [now, listener];
  }

  /** The same as a promise, for code that awaits. */
  promise(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.listen({ settled: (error) => error ? reject(error) : resolve() })
    );
  }

  resolve(): void {
    this.#settle(null);
  }

  reject(error: Error): void {
    this.#settle(error);
  }

  #settle(error: Error | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#error = error;
    const listeners = this.#listeners;
    this.#listeners = null;
    if (listeners === null) return;
    if (!Array.isArray(listeners)) {
      listeners.settled(error);
      return;
    }
    // Every listener hears of it even if one throws; the first throw is passed on after.
    let thrown: unknown = null;
    for (const l of listeners) {
      try {
        l.settled(error);
      } catch (e) {
        thrown ??= e;
      }
    }
    if (thrown !== null) throw thrown;
  }
}
