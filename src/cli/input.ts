/**
 * The chat's input, read ahead of the commands it feeds: a line typed while a command waits for
 * the server is read at once and stamped with the time it was entered, so that the session can
 * tell a line typed before a failure was shown from one typed after (see ChatSession.handle).
 * Reading ahead also lets Ctrl-C end the client while a command waits.
 */

import type { Terminal } from "../terminal/terminal.ts";

/** One line the user entered (a continued message joined), and when, on performance.now(). */
export interface TypedLine {
  text: string;
  at: number;
}

interface Queued extends TypedLine {
  /** Resolved once handled, for a line after which reading waits (see `waitAfter`). */
  handled?: PromiseWithResolvers<void>;
}

/**
 * Lines read ahead at most: a file piped in is read as fast as the commands it feeds are
 * handled, not into memory whole.
 */
export const MAX_AHEAD = 1000;

export class ReadAhead {
  readonly #queue: Queued[] = [];
  #roomFor: (() => void) | null = null;
  #end: "eof" | null = null;
  #wake: (() => void) | null = null;
  readonly #interrupted = Promise.withResolvers<"interrupted">();
  #current: Queued | null = null;

  /**
   * `waitAfter(line)`: true for a line after which nothing is read until it was handled (a
   * command that reads the terminal itself, like /passwd, or one that ends the session).
   * `continued(yes)`: a message goes on over several lines (a trailing backslash), or ended.
   */
  constructor(
    private readonly term: Terminal,
    private readonly waitAfter: (line: string) => boolean,
    private readonly continued: (yes: boolean) => void,
  ) {
    void this.#read().catch((e) => {
      if (e instanceof Deno.errors.Interrupted) this.#interrupted.resolve("interrupted");
      else this.#interrupted.reject(e);
    });
  }

  /** Resolves on Ctrl-C at a terminal, whatever is still queued. */
  get interrupted(): Promise<"interrupted"> {
    return this.#interrupted.promise;
  }

  async #read(): Promise<void> {
    let pending = "";
    while (true) {
      const line = await this.term.readLine();
      if (line === null) {
        this.#push(null);
        return;
      }
      // A trailing backslash continues the message on the next line.
      if (line.endsWith("\\") && !line.startsWith("/")) {
        pending += line.slice(0, -1) + "\n";
        this.continued(true);
        continue;
      }
      const text = pending + line;
      if (pending) this.continued(false);
      pending = "";
      const item: Queued = { text, at: performance.now() };
      if (this.waitAfter(text)) item.handled = Promise.withResolvers<void>();
      this.#push(item);
      if (item.handled) await item.handled.promise;
      while (this.#queue.length >= MAX_AHEAD) await new Promise<void>((r) => this.#roomFor = r);
    }
  }

  #push(item: Queued | null): void {
    if (item === null) this.#end = "eof";
    else this.#queue.push(item);
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Lines read but not yet taken (on quitting: what the user typed that will not be handled). */
  pending(): readonly TypedLine[] {
    return this.#queue;
  }

  /**
   * The next line in the order entered, or "eof" once every line before the end of input was
   * taken. The line taken before is counted as handled.
   */
  async next(): Promise<TypedLine | "eof"> {
    this.#current?.handled?.resolve();
    this.#current = null;
    while (this.#queue.length === 0) {
      if (this.#end) return this.#end;
      await new Promise<void>((r) => this.#wake = r);
    }
    this.#current = this.#queue.shift()!;
    const room = this.#roomFor;
    this.#roomFor = null;
    room?.();
    return this.#current;
  }
}
