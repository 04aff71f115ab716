/**
 * The end of some store work, such as a message's rows becoming durable, told to listeners.
 * Not a promise: every chat message makes one, and a listener object is one allocation where
 * a chain of promises and closures is several, all of which live as long as the message waits.
 */

export interface CompletionListener {
  /**
   * Called once: with null when the work is done, with the error when it failed. It should not
   * throw; if it does, the error is printed and the other listeners are still told.
   */
  settled(error: Error | null): void;
}

export class Completion {
  #settled = false;
  #error: Error | null = null;
  /** One listener, or several in the rare case that more than one waits. */
  #listeners: CompletionListener | CompletionListener[] | null = null;

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
    if (!Array.isArray(listeners)) tell(listeners, error);
    else for (const l of listeners) tell(l, error);
  }
}

/**
 * A listener's throw stops here: it would otherwise surface wherever the work happened to end
 * (inside the committer, or as an unhandled rejection that ends the process).
 */
function tell(listener: CompletionListener, error: Error | null): void {
  try {
    listener.settled(error);
  } catch (e) {
    console.error("A completion listener failed:", e);
  }
}
