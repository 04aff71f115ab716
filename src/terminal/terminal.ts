/**
 * The terminal: on a TTY, a small line editor in raw mode that keeps what the user is typing
 * on the last line while incoming messages print above it. Elsewhere (pipes, tests), plain
 * lines in and out.
 */

const encoder = new TextEncoder();

export interface Terminal {
  /** Prints text above the input line (a trailing newline is added). */
  print(text: string): void;
  /** The next line the user entered, or null at end of input. */
  readLine(): Promise<string | null>;
  /** Reads a password: hidden on a TTY. */
  readSecret(prompt: string): Promise<string | null>;
  setPrompt(prompt: string): void;
  /**
   * Prints a line that the next update with the same key replaces where the terminal can (a
   * progress bar); elsewhere, like print.
   */
  update(key: string, text: string): void;
  /** True when update() redraws in place, so frequent updates cost no lines. */
  readonly redraws: boolean;
  readonly colors: boolean;
  close(): void;
}

export function openTerminal(): Terminal {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal()
    ? new TtyTerminal()
    : new PlainTerminal();
}

function write(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text));
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/** Text up to the next control character or escape sequence. */
// deno-lint-ignore no-control-regex
const PRINTABLE_RUN = /^[^\x00-\x1f\x7f]+/;

/**
 * Where the character (grapheme) before `cursor` starts in `line`, a list of code points: a
 * Backspace removes a whole emoji with its joiners and modifiers, or a letter with its accents.
 */
export function graphemeStart(line: readonly string[], cursor: number): number {
  if (cursor <= 0) return 0;
  let start = 0;
  let at = 0;
  for (const { segment } of segmenter.segment(line.slice(0, cursor).join(""))) {
    start = at;
    at += [...segment].length;
  }
  return start;
}

/** Where the character after `cursor` ends: the right arrow steps over a whole grapheme. */
export function graphemeEnd(line: readonly string[], cursor: number): number {
  if (cursor >= line.length) return line.length;
  const first = segmenter.segment(line.slice(cursor).join("")).containing(0);
  return cursor + (first ? [...first.segment].length : 1);
}

/** The terminal's width; 80 if it cannot be told. */
function columns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

function colorsWanted(): boolean {
  return Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
}

/** Reads stdin as UTF-8 text chunks, shared by line and key reading. */
class StdinText {
  readonly #decoder = new TextDecoder();
  readonly #buf = new Uint8Array(4096);
  pending = "";
  done = false;

  async more(): Promise<void> {
    const n = await Deno.stdin.read(this.#buf);
    if (n === null) {
      this.done = true;
      this.pending += this.#decoder.decode();
    } else {
      this.pending += this.#decoder.decode(this.#buf.subarray(0, n), { stream: true });
    }
  }
}

export class PlainTerminal implements Terminal {
  readonly #in = new StdinText();
  readonly colors = colorsWanted();
  readonly redraws = false;

  print(text: string): void {
    write(text + "\n");
  }

  update(_key: string, text: string): void {
    this.print(text);
  }

  async readLine(): Promise<string | null> {
    while (true) {
      const nl = this.#in.pending.indexOf("\n");
      if (nl >= 0) {
        const line = this.#in.pending.slice(0, nl).replace(/\r$/, "");
        this.#in.pending = this.#in.pending.slice(nl + 1);
        return line;
      }
      if (this.#in.done) {
        const rest = this.#in.pending;
        this.#in.pending = "";
        return rest === "" ? null : rest;
      }
      await this.#in.more();
    }
  }

  readSecret(_prompt: string): Promise<string | null> {
    return this.readLine();
  }

  setPrompt(_prompt: string): void {}

  close(): void {}
}

export class TtyTerminal implements Terminal {
  readonly #in = new StdinText();
  readonly colors = colorsWanted();
  #prompt = "> ";
  #line: string[] = [];
  #cursor = 0;
  #history: string[] = [];
  #historyAt = 0;
  #active = false;
  #hidden = false;
  readonly redraws = true;
  /** The key of the update() line printed last, while nothing has been printed after it. */
  #lastUpdate: string | null = null;

  constructor() {
    Deno.stdin.setRaw(true);
  }

  #redraw(): void {
    if (!this.#active) return;
    const shown = this.#hidden ? "" : this.#line.join("");
    const back = this.#hidden ? 0 : this.#line.length - this.#cursor;
    write(`\r\x1b[2K${this.#prompt}${shown}${back > 0 ? `\x1b[${back}D` : ""}`);
  }

  print(text: string): void {
    if (this.#active) write("\r\x1b[2K");
    write(text.replaceAll("\n", "\r\n") + "\r\n");
    this.#lastUpdate = null;
    this.#redraw();
  }

  update(key: string, text: string): void {
    // A line that wraps takes more than the one row the redraw goes back over.
    if (this.#lastUpdate === key && !text.includes("\n") && [...text].length < columns()) {
      // The line above the input line is this key's: clear both, write it again.
      write(`\r\x1b[2K\x1b[1A\r\x1b[2K${text}\r\n`);
      this.#redraw();
    } else this.print(text);
    this.#lastUpdate = key;
  }

  setPrompt(prompt: string): void {
    this.#prompt = prompt;
    this.#redraw();
  }

  async #key(): Promise<string | null> {
    while (this.#in.pending === "") {
      if (this.#in.done) return null;
      await this.#in.more();
    }
    const text = this.#in.pending;
    // Escape sequences (arrows) arrive whole; take them as one key.
    // deno-lint-ignore no-control-regex
    const esc = /^\x1b\[[0-9;]*[A-Za-z~]/.exec(text);
    const key = esc ? esc[0] : String.fromCodePoint(text.codePointAt(0)!);
    this.#in.pending = text.slice(key.length);
    return key;
  }

  async #edit(): Promise<string | null> {
    this.#line = [];
    this.#cursor = 0;
    this.#active = true;
    this.#redraw();
    try {
      while (true) {
        // A paste arrives as one long run of printable text: inserted at once and drawn once,
        // not a key and a redraw at a time (100 KB pasted took minutes and gigabytes of output).
        const run = PRINTABLE_RUN.exec(this.#in.pending)?.[0];
        if (run && run.length > 1) {
          this.#in.pending = this.#in.pending.slice(run.length);
          const chars = [...run];
          this.#line = this.#line.slice(0, this.#cursor).concat(
            chars,
            this.#line.slice(this.#cursor),
          );
          this.#cursor += chars.length;
          this.#redraw();
          continue;
        }
        const key = await this.#key();
        if (key === null) return null;
        if (key === "\r" || key === "\n") {
          const line = this.#line.join("");
          this.#active = false;
          write(this.#hidden ? "\r\n" : `\r\x1b[2K${this.#prompt}${line}\r\n`);
          this.#lastUpdate = null;
          return line;
        }
        if (key === "\u0003") {
          // Leave the half-typed line as it is, marked, and end it: whatever prints next (the
          // shell's prompt) starts on a line of its own.
          this.#active = false;
          const right = this.#hidden ? 0 : this.#line.length - this.#cursor;
          write(`${right > 0 ? `\x1b[${right}C` : ""}^C\r\n`);
          this.#lastUpdate = null;
          throw new Deno.errors.Interrupted("Cancelled");
        }
        if (key === "\u0004" && this.#line.length === 0) {
          this.#active = false;
          write("\r\n");
          this.#lastUpdate = null;
          return null;
        }
        if (key === "\u007f" || key === "\b") {
          const start = graphemeStart(this.#line, this.#cursor);
          this.#line.splice(start, this.#cursor - start);
          this.#cursor = start;
        } else if (key === "\u0015") {
          this.#line.splice(0, this.#cursor);
          this.#cursor = 0;
        } else if (key === "\u0017") {
          let at = this.#cursor;
          while (at > 0 && this.#line[at - 1] === " ") at--;
          while (at > 0 && this.#line[at - 1] !== " ") at--;
          this.#line.splice(at, this.#cursor - at);
          this.#cursor = at;
        } else if (key === "\x1b[D") {
          this.#cursor = graphemeStart(this.#line, this.#cursor);
        } else if (key === "\x1b[C") {
          this.#cursor = graphemeEnd(this.#line, this.#cursor);
        } else if ((key === "\x1b[A" || key === "\x1b[B") && !this.#hidden) {
          const step = key === "\x1b[A" ? -1 : 1;
          this.#historyAt = Math.max(0, Math.min(this.#history.length, this.#historyAt + step));
          this.#line = [...(this.#history[this.#historyAt] ?? "")];
          this.#cursor = this.#line.length;
        } else if (key >= " " && !key.startsWith("\x1b")) {
          this.#line.splice(this.#cursor++, 0, key);
        }
        this.#redraw();
      }
    } finally {
      this.#active = false;
    }
  }

  async readLine(): Promise<string | null> {
    const line = await this.#edit();
    if (line) {
      this.#history.push(line);
      this.#historyAt = this.#history.length;
    }
    return line;
  }

  async readSecret(prompt: string): Promise<string | null> {
    const saved = this.#prompt;
    this.#prompt = prompt;
    this.#hidden = true;
    try {
      return await this.#edit();
    } finally {
      this.#hidden = false;
      this.#prompt = saved;
    }
  }

  close(): void {
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // stdin already gone
    }
  }
}
