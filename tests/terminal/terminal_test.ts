/**
 * The line editor (TtyTerminal) fed keys as a terminal sends them, byte by byte when a slow link
 * splits them, and drawn on a Screen that wraps and counts wide characters as a terminal does.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import {
  displayWidth,
  ESCAPE_TIMEOUT_MS,
  graphemeEnd,
  graphemeStart,
  graphemeWidth,
  type KeyInput,
  nextKey,
  TtyTerminal,
} from "../../src/terminal/terminal.ts";
import { Screen } from "./screen.ts";

Deno.test("graphemeStart() takes a ZWJ emoji, a flag and an accented letter whole", () => {
  for (const g of ["👩‍👩‍👧", "🇫🇷", "e\u0301", "👍🏽", "a"]) {
    const line = [..."hi " + g];
    assert.equal(graphemeStart(line, line.length), 3, g);
    assert.equal(graphemeEnd(line, 3), line.length, g);
  }
  assert.equal(graphemeStart([], 0), 0);
  assert.equal(graphemeEnd([..."ab"], 2), 2);
});

/** Keys as they arrive from a terminal: each push() is one read's worth. */
class Keys implements KeyInput {
  readonly #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | null = null;

  push(text: string): void {
    this.#chunks.push(new TextEncoder().encode(text));
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
    const chunk = this.#chunks[0];
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }
}

/** Lets the editor take what has been pushed. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

function editor(columns = 80) {
  const keys = new Keys();
  const screen = new Screen(columns);
  const clock = new ManualClock();
  const term = new TtyTerminal({
    input: keys,
    output: (text) => screen.write(text),
    columns: () => columns,
    timers: clock,
  });
  /** Pushes each chunk as a read of its own, letting the editor take each. */
  const type = async (...chunks: string[]) => {
    for (const chunk of chunks) {
      keys.push(chunk);
      await settle();
    }
  };
  /** The line entered after `chunks` and Enter. */
  const enter = async (...chunks: string[]) => {
    const line = term.readLine();
    await type(...chunks, "\r");
    return await line;
  };
  return { keys, screen, clock, term, type, enter };
}

const LEFT = "\x1b[D";

Deno.test("an arrow key whose bytes come in separate reads moves the cursor and inserts nothing", async () => {
  const { enter } = editor();
  const split = Array.from({ length: 7 }, () => ["\x1b", "[", "D"]).flat();
  assert.equal(await enter("helo world", ...split, "l"), "hello world");
});

Deno.test("the start of an escape sequence waits for the rest until a timeout, then is dropped", async () => {
  const { enter, type, clock, term, screen } = editor();
  // Still waiting just before the timeout: the rest makes an arrow.
  let line = term.readLine();
  await type("ab", "\x1b");
  clock.advance(ESCAPE_TIMEOUT_MS - 1);
  await type("[", "D", "X\r");
  assert.equal(await line, "aXb");
  // A lone ESC, then nothing for the timeout: dropped; what comes later is text again.
  line = term.readLine();
  await type("ab", "\x1b");
  assert.equal(screen.lines().at(-1), "> ab");
  clock.advance(ESCAPE_TIMEOUT_MS);
  await type("[D\r");
  assert.equal(await line, "ab[D");
  // A sequence cut short for the timeout is dropped whole.
  line = term.readLine();
  await type("ab", "\x1b[1");
  clock.advance(ESCAPE_TIMEOUT_MS);
  await type("c\r");
  assert.equal(await line, "abc");
  // An ESC followed by something that starts no sequence (Alt-x) is dropped at once.
  assert.equal(await enter("a\x1bx"), "ax");
});

Deno.test("nextKey() takes whole sequences and waits on a started one", () => {
  assert.equal(nextKey("ab"), "a");
  assert.equal(nextKey("🍕x"), "🍕");
  for (const started of ["\x1b", "\x1b[", "\x1b[1", "\x1b[1;5", "\x1bO"]) {
    assert.equal(nextKey(started), null, JSON.stringify(started));
  }
  for (const whole of ["\x1b[D", "\x1b[3~", "\x1b[1;5C", "\x1bOH", "\x1b[200~"]) {
    assert.equal(nextKey(whole + "x"), whole, JSON.stringify(whole));
  }
  assert.equal(nextKey("\x1bx"), "\x1b");
  assert.equal(nextKey("\x1b[1\x03"), "\x1b[1");
  assert.equal(nextKey(""), null);
});

Deno.test("Home, End and Delete in their usual spellings; unknown sequences insert nothing", async () => {
  const { enter, keys, term } = editor();
  for (const home of ["\x1b[H", "\x1b[1~", "\x1b[7~", "\x1bOH", "\x01"]) {
    for (const end of ["\x1b[F", "\x1b[4~", "\x1b[8~", "\x1bOF", "\x05"]) {
      const name = JSON.stringify([home, end]);
      assert.equal(await enter("world", home, "hello ", end, "!"), "hello world!", name);
    }
  }
  assert.equal(await enter("abc", "\x01", "\x1b[3~"), "bc");
  assert.equal(await enter("abc", LEFT, "\x1b[3~", "\x1b[3~"), "ab");
  // Ctrl-D on a line with text deletes under the cursor (a whole emoji), as in readline.
  assert.equal(await enter("a👩‍👩‍👧c", LEFT, LEFT, "\x04"), "ac");
  assert.equal(await enter("abc", "\x04"), "abc");
  // Ctrl-Left, F1, F5, a bracketed paste's marks, application-mode keypad: ignored whole.
  const unknown = ["\x1b[1;5D", "\x1bOP", "\x1b[15~", "\x1b[200~", "\x1b[201~", "\x1bOx"];
  assert.equal(await enter("a", ...unknown, "b"), "ab");
  assert.equal(await enter("a", unknown.join(""), "b"), "ab");
  // Ctrl-D on an empty line is still the end of input.
  const line = term.readLine();
  keys.push("\x04");
  assert.equal(await line, null);
});

Deno.test("graphemeWidth() counts terminal columns: wide, fullwidth and emoji 2, marks 0", () => {
  const widths: [string, number][] = [
    ["a", 1],
    ["é", 1],
    ["e\u0301", 1],
    ["\u0301", 0],
    ["🍕", 2],
    ["👩‍👩‍👧", 2],
    ["👍🏽", 2],
    ["🇫🇷", 2],
    ["❤️", 2],
    ["❤", 1],
    ["漢", 2],
    ["한", 2],
    ["カ", 2],
    ["ｶ", 1],
    ["Ａ", 2],
    ["\u200b", 0],
  ];
  for (const [g, w] of widths) assert.equal(graphemeWidth(g), w, JSON.stringify(g));
  assert.equal(displayWidth("ab🍕🍕🍕cd"), 10);
  assert.equal(displayWidth("\x1b[1mbold\x1b[0m"), 4);
});

Deno.test("the cursor stands where it is among wide characters", async () => {
  const { type, screen, term } = editor();
  const line = term.readLine();
  await type("ab🍕🍕🍕cd", ...Array(5).fill(LEFT), "X");
  assert.equal(screen.lines().at(-1), "> abX🍕🍕🍕cd");
  assert.equal(screen.col, 5);
  await type("\x1b[F");
  assert.equal(screen.col, 2 + 11);
  await type(LEFT, LEFT, LEFT);
  assert.equal(screen.col, 2 + 7);
  await type("\r");
  assert.equal(await line, "abX🍕🍕🍕cd");
});

Deno.test("a line longer than the terminal scrolls sideways on one row, marked < and >", async () => {
  const { type, screen, term } = editor(60);
  const text = Array.from({ length: 136 }, (_, i) => String.fromCharCode(97 + i % 26)).join("");
  const line = term.readLine();
  // Typed a key at a time: each keystroke redraws.
  await type(...text);
  const check = (what: string) => {
    const rows = screen.shown();
    assert.equal(rows.length, 1, `${what}: ${JSON.stringify(rows)}`);
    assert.ok(rows[0].length <= 59, `${what}: ${rows[0]}`);
    assert.equal(screen.row, 0, what);
    return rows[0];
  };
  let row = check("typed");
  assert.ok(row.startsWith("> <"), row);
  assert.ok(text.endsWith(row.slice(3)), row);
  assert.equal(screen.col, row.length);

  await type("\x01");
  row = check("Home");
  assert.ok(row.endsWith(">"), row);
  assert.equal(row.slice(2, -1), text.slice(0, row.length - 3));
  assert.equal(screen.col, 2);

  // Right to the end again, a key at a time: the cursor stays in view.
  for (let i = 0; i < text.length; i++) {
    await type("\x1b[C");
    row = check(`right ${i}`);
    const at: number = screen.col;
    assert.ok(at < 60);
    if (i < text.length - 1) assert.equal(row[at], text[i + 1], `right ${i}: ${row}`);
  }
  term.print("<bob> hello");
  assert.deepEqual(screen.shown().slice(0, 1), ["<bob> hello"]);
  assert.equal(screen.shown().length, 2);
  assert.equal(screen.row, 1);

  await type("\x15");
  assert.deepEqual(screen.shown(), ["<bob> hello", ">"]);
  await type("short\r");
  assert.equal(await line, "short");
});

Deno.test("a wide character is never cut at the edge of the view", async () => {
  const { type, screen, term } = editor(20);
  const line = term.readLine();
  await type("🍕".repeat(30));
  for (const row of screen.shown()) assert.ok(displayWidth(row) <= 19, row);
  assert.equal(screen.shown().length, 1);
  await type("\x01", "\x1b[C", "\x1b[C");
  assert.equal(screen.shown().length, 1);
  assert.equal(screen.col, 2 + 4);
  await type("\r");
  assert.equal(await line, "🍕".repeat(30));
});

Deno.test("a Tab, typed or pasted, is inserted as one space", async () => {
  const { enter } = editor();
  assert.equal(await enter("a\tb\tc"), "a b c");
  assert.equal(await enter("a", "\t", "b"), "a b");
});

Deno.test("a 100 KB paste in 4 KB reads is taken in well under a second per read", async () => {
  const { enter, screen } = editor(60);
  const text = "0123456789".repeat(10_000);
  const reads = text.match(/[\s\S]{1,4096}/g)!;
  const started = performance.now();
  assert.equal(await enter(...reads, "\x1b[H", "\x1b[F"), text);
  assert.ok(performance.now() - started < 20_000);
  // Entered, the whole line is written out (wrapped by the terminal) for the scrollback.
  assert.equal(screen.shown().join(""), "> " + text);
});
