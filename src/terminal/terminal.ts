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
  /**
   * Drops keys typed ahead and not yet read into a line (a TTY's): true if there were some. A
   * password prompt asks this first, so that a chat line typed in one go with `/passwd` is not
   * taken as the password. Piped input is never dropped: there, the lines are the answers.
   */
  dropTypedAhead(): boolean;
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

/** Where a TtyTerminal reads keys: stdin, or a test's bytes. */
export interface KeyInput {
  read(p: Uint8Array): Promise<number | null>;
}

/** Timers, as src/clock/clock.ts's Clock has them (the terminal layer imports nothing). */
export interface Timers {
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

const realTimers: Timers = {
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (timer) => clearTimeout(timer as number),
};

/** What a TtyTerminal is wired to; tests give their own, the client takes the defaults. */
export interface TtyOptions {
  /** Keys come from here (default stdin, put in raw mode). */
  input?: KeyInput;
  /** What is drawn goes here (default stdout). */
  output?: (text: string) => void;
  /** The terminal's width in columns (default the console's, or 80). */
  columns?: () => number;
  timers?: Timers;
}

/**
 * How long the rest of an escape sequence (an arrow key's `[D`) may take to arrive after its
 * ESC before the part that came is dropped: readline's default keyseq-timeout. Over a slow link
 * a key's bytes can arrive in separate reads.
 */
export const ESCAPE_TIMEOUT_MS = 500;

export function openTerminal(): Terminal {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal()
    ? new TtyTerminal()
    : new PlainTerminal();
}

function write(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text));
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/**
 * Text up to the next control character or escape sequence. A Tab counts as text: it is
 * inserted as a single space (the input line has no tab stops), so that a pasted line keeps its
 * words apart.
 */
// deno-lint-ignore no-control-regex
const PRINTABLE_RUN = /^[^\x00-\x08\x0a-\x1f\x7f]+/;

/** A whole CSI (`ESC [ params final`) or SS3 (`ESC O final`) sequence. */
// deno-lint-ignore no-control-regex
const ESCAPE_SEQUENCE = /^\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|O[\x30-\x3f]*)[\x40-\x7e]/;
/** The start of one whose final byte has not come yet. */
// deno-lint-ignore no-control-regex
const ESCAPE_PREFIX = /^\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|O[\x30-\x3f]*)?/;

/**
 * The first key in `text`: one code point, or a whole escape sequence; null when `text` is only
 * the start of an escape sequence (wait for the rest). An ESC not starting a sequence, or a
 * sequence cut short by a byte that cannot be in one, comes out alone: a key that does nothing,
 * and the rest is read as usual.
 */
export function nextKey(text: string): string | null {
  if (text === "") return null;
  if (text[0] !== "\x1b") return String.fromCodePoint(text.codePointAt(0)!);
  const whole = ESCAPE_SEQUENCE.exec(text);
  if (whole) return whole[0];
  const start = ESCAPE_PREFIX.exec(text)![0];
  return start.length === text.length ? null : start;
}

/**
 * Terminal columns that a grapheme takes: 2 for East Asian Wide and Fullwidth characters and
 * emoji, 0 for a lone combining mark or a control, else 1 (a letter with its accents is one).
 */
export function graphemeWidth(grapheme: string): number {
  const first = grapheme.codePointAt(0);
  if (first === undefined || first < 0x20 || (first >= 0x7f && first < 0xa0)) return 0;
  if (/^[\p{Mn}\p{Me}\p{Cf}]/u.test(grapheme)) return 0;
  if (
    /\p{Emoji_Presentation}|\p{Regional_Indicator}|\p{Extended_Pictographic}\uFE0F/u.test(grapheme)
  ) return 2;
  return isWide(first) ? 2 : 1;
}

/** East Asian Wide and Fullwidth blocks (as wcwidth has them, in short). */
function isWide(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xa960 && cp <= 0xa97f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe10 && cp <= 0xfe19) ||
    (cp >= 0xfe30 && cp <= 0xfe6f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x2fffd) ||
    (cp >= 0x30000 && cp <= 0x3fffd);
}

/** Terminal columns that `text` takes on one row (escape sequences take none). */
export function displayWidth(text: string): number {
  let width = 0;
  // deno-lint-ignore no-control-regex
  for (const { segment } of segmenter.segment(text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""))) {
    width += graphemeWidth(segment);
  }
  return width;
}

/**
 * The part of an input line that one row shows: the line scrolls sideways so that it never
 * wraps (a wrapped line's rows were left behind on every redraw). `<` and `>` mark text cut off
 * on the left and right.
 */
export interface InputView {
  /** What to draw after the prompt. */
  text: string;
  /** The cursor's column, counted from the end of the prompt. */
  cursor: number;
  /** The first grapheme shown: where the view starts next time, so it does not jump. */
  start: number;
}

/**
 * Lays out `graphemes` (with the cursor before graphemes[cursor]) in `room` columns, starting
 * the view at `start` or as near it as keeps the cursor in view.
 */
export function inputView(
  graphemes: readonly string[],
  cursor: number,
  room: number,
  start: number,
): InputView {
  const widths = graphemes.map(graphemeWidth);
  const n = graphemes.length;
  // Widths summed once: each layout below costs the view's width, not the line's.
  const before = [0];
  for (const w of widths) before.push(before[before.length - 1] + w);
  const sum = (from: number, to: number) => before[to] - before[from];
  // The graphemes shown from `from` on: [from, end), with the marks they need.
  const layout = (from: number) => {
    const left = from > 0 ? 1 : 0;
    let space = room - left;
    if (sum(from, n) <= space) return { left, end: n };
    space -= 1; // the `>`
    let end = from;
    for (let used = 0; end < n && used + widths[end] <= space; end++) used += widths[end];
    return { left, end };
  };
  // The cursor is in view on a grapheme shown, or after the last one with a column left for it.
  const fits = (from: number) => {
    const { left, end } = layout(from);
    return cursor < end || (cursor === n && end === n && left + sum(from, n) <= room);
  };
  start = Math.max(0, Math.min(start, cursor, n));
  if (!fits(start)) {
    // The cursor went past the right edge: the view ends at it.
    start = cursor;
    while (start > 0 && fits(start - 1)) start--;
  }
  // Text deleted at the end: show as much of the line as still fits.
  while (start > 0 && layout(start).end === n && fits(start - 1)) start--;
  const { left, end } = layout(start);
  return {
    text: (left ? "<" : "") + graphemes.slice(start, end).join("") + (end < n ? ">" : ""),
    cursor: left + sum(start, cursor),
    start,
  };
}

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
  /** The read under way: one at a time, even when a wait for it timed out. */
  #reading: Promise<void> | null = null;
  pending = "";
  done = false;

  constructor(readonly input: KeyInput = Deno.stdin) {}

  more(): Promise<void> {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = null;
    });
    return this.#reading;
  }

  async #read(): Promise<void> {
    const n = await this.input.read(this.#buf);
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

  dropTypedAhead(): boolean {
    return false;
  }

  close(): void {}
}

const HOME = new Set(["\x1b[H", "\x1b[1~", "\x1b[7~", "\x1bOH", "\x01"]);
const END = new Set(["\x1b[F", "\x1b[4~", "\x1b[8~", "\x1bOF", "\x05"]);
const LEFT = new Set(["\x1b[D", "\x1bOD"]);
const RIGHT = new Set(["\x1b[C", "\x1bOC"]);
const UP = new Set(["\x1b[A", "\x1bOA"]);
const DOWN = new Set(["\x1b[B", "\x1bOB"]);
const DELETE = "\x1b[3~";

export class TtyTerminal implements Terminal {
  readonly #in: StdinText;
  readonly #write: (text: string) => void;
  readonly #columns: () => number;
  readonly #timers: Timers;
  readonly #input: KeyInput;
  readonly colors: boolean;
  #prompt = "> ";
  #line: string[] = [];
  #cursor = 0;
  /** The first grapheme the input row shows (see inputView). */
  #viewStart = 0;
  #history: string[] = [];
  #historyAt = 0;
  #active = false;
  #hidden = false;
  readonly redraws = true;
  /** The key of the update() line printed last, while nothing has been printed after it. */
  #lastUpdate: string | null = null;

  constructor(options: TtyOptions = {}) {
    this.#input = options.input ?? Deno.stdin;
    this.#in = new StdinText(this.#input);
    this.#write = options.output ?? write;
    this.#columns = options.columns ?? columns;
    this.#timers = options.timers ?? realTimers;
    this.colors = options.output ? false : colorsWanted();
    if (!options.input) Deno.stdin.setRaw(true);
  }

  /** Draws the prompt and the input line on one row, scrolled to keep the cursor in view. */
  #redraw(): void {
    if (!this.#active) return;
    let shown = "";
    let at = displayWidth(this.#prompt);
    if (!this.#hidden) {
      const before = [...segmenter.segment(this.#line.slice(0, this.#cursor).join(""))];
      const after = [...segmenter.segment(this.#line.slice(this.#cursor).join(""))];
      const graphemes = [...before, ...after].map((s) => s.segment);
      // The last column stays empty: a character there would leave the cursor past the edge.
      const room = Math.max(1, this.#columns() - at - 1);
      const view = inputView(graphemes, before.length, room, this.#viewStart);
      this.#viewStart = view.start;
      shown = view.text;
      at += view.cursor;
    }
    // Back from the end of what was drawn (never in the last column, so no wrap is pending).
    const back = displayWidth(this.#prompt + shown) - at;
    this.#write(`\r\x1b[2K${this.#prompt}${shown}${back > 0 ? `\x1b[${back}D` : ""}`);
  }

  print(text: string): void {
    if (this.#active) this.#write("\r\x1b[2K");
    this.#write(text.replaceAll("\n", "\r\n") + "\r\n");
    this.#lastUpdate = null;
    this.#redraw();
  }

  update(key: string, text: string): void {
    // A line that wraps takes more than the one row the redraw goes back over.
    if (this.#lastUpdate === key && !text.includes("\n") && displayWidth(text) < this.#columns()) {
      // The line above the input line is this key's: clear both, write it again.
      this.#write(`\r\x1b[2K\x1b[1A\r\x1b[2K${text}\r\n`);
      this.#redraw();
    } else this.print(text);
    this.#lastUpdate = key;
  }

  setPrompt(prompt: string): void {
    this.#prompt = prompt;
    this.#redraw();
  }

  /** Resolves true if `ms` passed before more input came (or the input ended). */
  async #waitMore(ms: number): Promise<boolean> {
    let timer: unknown;
    const late = new Promise<boolean>((resolve) => {
      timer = this.#timers.setTimer(() => resolve(true), ms);
    });
    try {
      return await Promise.race([this.#in.more().then(() => false), late]);
    } finally {
      this.#timers.clearTimer(timer);
    }
  }

  async #key(): Promise<string | null> {
    while (true) {
      const key = nextKey(this.#in.pending);
      if (key !== null) {
        this.#in.pending = this.#in.pending.slice(key.length);
        return key;
      }
      const started = this.#in.pending.length;
      if (started === 0) {
        if (this.#in.done) return null;
        await this.#in.more();
      } else if (this.#in.done || await this.#waitMore(ESCAPE_TIMEOUT_MS)) {
        // The start of an escape sequence whose rest never came (or a lone ESC): dropped, never
        // inserted as text. What came after the timeout (already read, maybe) is read afresh.
        this.#in.pending = this.#in.pending.slice(started);
      }
    }
  }

  /** Inserts text at the cursor (a Tab as a space: see PRINTABLE_RUN). */
  #insert(text: string): void {
    const chars = [...text.replaceAll("\t", " ")];
    // Not splice(...chars): a 100 KB paste is too many arguments.
    this.#line = this.#line.slice(0, this.#cursor).concat(chars, this.#line.slice(this.#cursor));
    this.#cursor += chars.length;
  }

  async #edit(): Promise<string | null> {
    this.#line = [];
    this.#cursor = 0;
    this.#viewStart = 0;
    this.#active = true;
    this.#redraw();
    try {
      while (true) {
        // A paste arrives as one long run of printable text: inserted at once and drawn once,
        // not a key and a redraw at a time (100 KB pasted took minutes and gigabytes of output).
        const run = PRINTABLE_RUN.exec(this.#in.pending)?.[0];
        if (run && run.length > 1) {
          this.#in.pending = this.#in.pending.slice(run.length);
          this.#insert(run);
          this.#redraw();
          continue;
        }
        const key = await this.#key();
        if (key === null) return null;
        if (key === "\r" || key === "\n") {
          const line = this.#line.join("");
          this.#active = false;
          // The whole line, wrapped as the terminal likes: it is history now, not edited.
          this.#write(this.#hidden ? "\r\n" : `\r\x1b[2K${this.#prompt}${line}\r\n`);
          this.#lastUpdate = null;
          return line;
        }
        if (key === "\u0003") {
          // Leave the half-typed line whole, marked, and end it: whatever prints next (the
          // shell's prompt) starts on a line of its own.
          this.#active = false;
          const line = this.#hidden ? "" : this.#line.join("");
          this.#write(`\r\x1b[2K${this.#prompt}${line}^C\r\n`);
          this.#lastUpdate = null;
          throw new Deno.errors.Interrupted("Cancelled");
        }
        if (key === "\u0004" && this.#line.length === 0) {
          this.#active = false;
          this.#write("\r\n");
          this.#lastUpdate = null;
          return null;
        }
        if (key === "\u007f" || key === "\b") {
          const start = graphemeStart(this.#line, this.#cursor);
          this.#line.splice(start, this.#cursor - start);
          this.#cursor = start;
        } else if (key === DELETE || key === "\u0004") {
          // Ctrl-D on a line with text deletes under the cursor, as in readline.
          this.#line.splice(this.#cursor, graphemeEnd(this.#line, this.#cursor) - this.#cursor);
        } else if (key === "\u0015") {
          this.#line.splice(0, this.#cursor);
          this.#cursor = 0;
        } else if (key === "\u0017") {
          let at = this.#cursor;
          while (at > 0 && this.#line[at - 1] === " ") at--;
          while (at > 0 && this.#line[at - 1] !== " ") at--;
          this.#line.splice(at, this.#cursor - at);
          this.#cursor = at;
        } else if (LEFT.has(key)) {
          this.#cursor = graphemeStart(this.#line, this.#cursor);
        } else if (RIGHT.has(key)) {
          this.#cursor = graphemeEnd(this.#line, this.#cursor);
        } else if (HOME.has(key)) {
          this.#cursor = 0;
        } else if (END.has(key)) {
          this.#cursor = this.#line.length;
        } else if ((UP.has(key) || DOWN.has(key)) && !this.#hidden) {
          const step = UP.has(key) ? -1 : 1;
          this.#historyAt = Math.max(0, Math.min(this.#history.length, this.#historyAt + step));
          this.#line = [...(this.#history[this.#historyAt] ?? "")];
          this.#cursor = this.#line.length;
        } else if (key === "\t" || (key >= " " && key !== "\u007f" && key[0] !== "\x1b")) {
          // Any other escape sequence (a key this editor has no use for) is ignored whole.
          this.#insert(key);
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

  dropTypedAhead(): boolean {
    const had = this.#in.pending !== "";
    this.#in.pending = "";
    return had;
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
    if (this.#input !== Deno.stdin) return;
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // stdin already gone
    }
  }
}
