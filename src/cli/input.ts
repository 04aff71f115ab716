/**
 * Terminal input: a line reader over stdin (shared by prompts and the REPL, so no bytes are
 * lost between them) and a hidden password prompt for TTYs.
 */

const encoder = new TextEncoder();

export function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text));
}

export class LineReader {
  readonly #decoder = new TextDecoder();
  readonly #chunk = new Uint8Array(4096);
  #buffer = "";
  #done = false;

  async #fill(): Promise<void> {
    const n = await Deno.stdin.read(this.#chunk);
    if (n === null) {
      this.#done = true;
      this.#buffer += this.#decoder.decode();
    } else {
      this.#buffer += this.#decoder.decode(this.#chunk.subarray(0, n), { stream: true });
    }
  }

  /** The next line without its newline, or null at end of input. */
  async next(): Promise<string | null> {
    while (true) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl).replace(/\r$/, "");
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      if (this.#done) {
        const rest = this.#buffer;
        this.#buffer = "";
        return rest === "" ? null : rest;
      }
      await this.#fill();
    }
  }

  async prompt(question: string): Promise<string | null> {
    print(question);
    return await this.next();
  }

  /** Reads a password: hidden on a TTY, a plain line otherwise (for scripts). */
  async password(question: string): Promise<string | null> {
    if (!Deno.stdin.isTerminal()) return await this.next();
    print(question);
    Deno.stdin.setRaw(true);
    const chars: string[] = [];
    try {
      while (true) {
        if (this.#buffer === "") {
          if (this.#done) return null;
          await this.#fill();
          continue;
        }
        const ch = String.fromCodePoint(this.#buffer.codePointAt(0)!);
        this.#buffer = this.#buffer.slice(ch.length);
        if (ch === "\r" || ch === "\n") {
          if (ch === "\r" && this.#buffer.startsWith("\n")) this.#buffer = this.#buffer.slice(1);
          return chars.join("");
        }
        if (ch === "\u0003") throw new Deno.errors.Interrupted("Cancelled");
        if (ch === "\u007f" || ch === "\b") chars.pop();
        else if (ch >= " ") chars.push(ch);
      }
    } finally {
      Deno.stdin.setRaw(false);
      print("\n");
    }
  }
}
