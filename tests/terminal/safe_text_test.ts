/** Text from the network made safe to print and to save: a table of hostile strings. */

import assert from "node:assert/strict";
import { Prng } from "../protocol/prng.ts";
import {
  FIELD_CHARS,
  FILE_NAME_BYTES,
  hasHidden,
  safeFileName,
  sentence,
  SENTENCE_CHARS,
  shown,
  visible,
  visibleLines,
} from "../../src/terminal/safe_text.ts";

/** What a terminal acts on or does not show: no output of ours may hold one (bar \n, \t). */
// deno-lint-ignore no-control-regex
const ACTIVE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/u;

const HOSTILE: [string, string, string][] = [
  ["OSC 0 sets the window title", "\x1b]0;pwned\x07hi", "\\u{1b}]0;pwned\\u{7}hi"],
  [
    "OSC 52 writes the clipboard",
    "\x1b]52;c;cm0gLXJmIH4=\x1b\\",
    "\\u{1b}]52;c;cm0gLXJmIH4=\\u{1b}\\",
  ],
  ["CR and erase-line forge a line", "ok\r\x1b[2K<admin> x", "ok\\u{d}\\u{1b}[2K<admin> x"],
  ["invisible text", "\x1b[8msecret\x1b[0m", "\\u{1b}[8msecret\\u{1b}[0m"],
  ["clear screen", "\x1b[2J\x1b[H", "\\u{1b}[2J\\u{1b}[H"],
  ["C1 CSI (U+009B)", "a\u009b2Jb", "a\\u{9b}2Jb"],
  ["C1 OSC (U+009D)", "\u009d0;t\u009c", "\\u{9d}0;t\\u{9c}"],
  ["right-to-left override", "photo\u202egnp.exe", "photo\\u{202e}gnp.exe"],
  ["bidi isolates", "\u2066a\u2069\u2067b\u2069", "\\u{2066}a\\u{2069}\\u{2067}b\\u{2069}"],
  ["zero-width space in a name", "al\u200bice", "al\\u{200b}ice"],
  ["zero-width joiner between letters", "a\u200db", "a\\u{200d}b"],
  ["BOM and soft hyphen", "\ufeffa\u00adb", "\\u{feff}a\\u{ad}b"],
  ["Hangul filler (blank)", "\u3164", "\\u{3164}"],
  ["tag characters (invisible ASCII)", "x\u{e0041}", "x\\u{e0041}"],
  ["NUL, BEL, backspace, DEL", "\0\x07\b\x7f", "\\u{0}\\u{7}\\u{8}\\u{7f}"],
  ["newline in a one-line field", "a\nb", "a\\u{a}b"],
  ["tab in a one-line field", "a\tb", "a\\u{9}b"],
  ["line separator", "a\u2028b", "a\\u{2028}b"],
  ["lone surrogate", "a\ud800b", "a\\u{d800}b"],
  ["emoji family keeps its joiners", "👨‍👩‍👧", "👨‍👩‍👧"],
  ["plain text in any script", "Grüße, 你好, שלום", "Grüße, 你好, שלום"],
];

Deno.test("visible() shows every hostile character as \\u{..} and leaves text alone", () => {
  for (const [what, input, expected] of HOSTILE) {
    const out = visible(input);
    assert.equal(out, expected, what);
    assert.doesNotMatch(out.replace(/👨‍👩‍👧/u, ""), ACTIVE, what);
  }
});

Deno.test("visible() caps a 1 Mi-character reason at FIELD_CHARS with an ellipsis", () => {
  const reason = "\x1b".repeat(1024 * 1024);
  const started = performance.now();
  const out = visible(reason);
  assert.ok(performance.now() - started < 200, "stops at the cap, does not walk 1 Mi characters");
  assert.ok([...out].length <= FIELD_CHARS && [...out].length > FIELD_CHARS - 8);
  assert.ok(out.endsWith("…"));
  assert.ok(!out.includes("\x1b"));
  assert.equal(visible("x".repeat(FIELD_CHARS)), "x".repeat(FIELD_CHARS), "exactly at the cap");
  assert.equal(visible("x".repeat(FIELD_CHARS + 1)), "x".repeat(FIELD_CHARS - 1) + "…");
  assert.equal(visible("abcdef", 4), "abc…");
  assert.equal(visible("😀😀😀😀", 4), "😀😀😀😀", "counts code points, not UTF-16 units");
});

Deno.test("visibleLines() keeps newlines and tabs, turns CR LF into a newline, caps lines", () => {
  assert.equal(visibleLines("one\r\ntwo\n\tthree"), "one\ntwo\n\tthree");
  assert.equal(visibleLines("a\rb"), "a\\u{d}b", "a lone CR would return to the line's start");
  assert.equal(visibleLines("a\n\x1b[1Ab"), "a\n\\u{1b}[1Ab");
  assert.equal(visibleLines("1\n2\n3\n4", 100, 3), "1\n2\n3…");
  assert.equal(visibleLines("\n".repeat(16_000)).split("\n").length, 200);
  assert.equal(visibleLines("abcdef", 4), "abc…");
});

Deno.test("shown`` passes every interpolated value through visible()", () => {
  const name = "bob\x1b]0;x\x07";
  assert.equal(shown`${name} left #${3} ${"\u202e"}.`, "bob\\u{1b}]0;x\\u{7} left #3 \\u{202e}.");
  assert.equal(shown`${undefined}`, "");
});

Deno.test("visible() output never holds an active character (seeded random strings)", () => {
  const pool = [..."a\n\t\r\x1b\x07\x00\x9b\u202e\u200b\u200d😀\u2028\ud800é"];
  const random = new Prng(19);
  for (let n = 0; n < 20_000; n++) {
    let s = "";
    for (let i = 0; i < 30; i++) s += pool[random.int(0, pool.length - 1)];
    const one = visible(s, 50);
    assert.ok(!hasHidden(one.replaceAll(/(?<=😀)\u200d(?=😀)/gu, "")), JSON.stringify(s));
    assert.ok([...one].length <= 50);
    const many = visibleLines(s, 50, 5);
    assert.ok(!hasHidden(many.replaceAll(/[\n\t]/g, "").replaceAll(/(?<=😀)\u200d(?=😀)/gu, "")));
    assert.ok(many.split("\n").length <= 5);
  }
});

Deno.test("safeFileName() makes one short, visible, ordinary name of anything", () => {
  const cases: [string, string][] = [
    ["cat.png", "cat.png"],
    ["../../.bashrc", "_.._.bashrc"],
    ["/etc/passwd", "_etc_passwd"],
    ["..\\..\\win.ini", "_.._win.ini"],
    [".hidden", "hidden"],
    ["...", "file"],
    ["", "file"],
    ["  .", "file"],
    ["a\x1b]0;x\x07.png", "a_]0;x_.png"],
    ["photo\u202egnp.exe", "photo_gnp.exe"],
    ["zero\u200bwidth.txt", "zero_width.txt"],
    ["CON", "_CON"],
    ["nul.txt", "_nul.txt"],
    ["com1.jpg", "_com1.jpg"],
    ["console.log", "console.log"],
    ['a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"],
    ["trailing dots...", "trailing dots"],
  ];
  for (const [input, expected] of cases) assert.equal(safeFileName(input), expected, input);
});

Deno.test("safeFileName() shortens to FILE_NAME_BYTES of UTF-8, keeping the extension", () => {
  const long = safeFileName("x".repeat(255) + ".png");
  assert.equal(new TextEncoder().encode(long).length, FILE_NAME_BYTES);
  assert.ok(long.endsWith("x.png"));
  // Multi-byte characters are cut between code points, never inside one.
  const wide = safeFileName("é".repeat(200) + ".jpeg");
  assert.ok(new TextEncoder().encode(wide).length <= FILE_NAME_BYTES);
  assert.ok(!wide.includes("\ufffd"));
  assert.match(wide, /^é+\.jpeg$/);
  const emoji = safeFileName("😀".repeat(100));
  assert.equal(new TextEncoder().encode(emoji).length, FILE_NAME_BYTES);
  // A long "extension" is part of the name.
  const dotted = safeFileName("a." + "b".repeat(300));
  assert.equal(new TextEncoder().encode(dotted).length, FILE_NAME_BYTES);
  // Cutting never leaves a name ending in a dot or space.
  const spaced = safeFileName("a".repeat(115) + "     b".repeat(20) + ".txt");
  assert.doesNotMatch(spaced, /[. ]\.txt$/);
});

Deno.test("a line cut inside an emoji sequence leaves no joiner before the ellipsis", () => {
  assert.equal(visible("ab😀\u200d😀x", 5), "ab😀…");
  assert.equal(visibleLines("ab😀\u200d😀x", 5), "ab😀…");
});

Deno.test("sentence() keeps our long sentences whole, escapes controls and still has a limit", () => {
  const long = `The server at a:1 presented identity key SHA256:${"x".repeat(300)}. Remove it.`;
  assert.equal(sentence(long), long);
  assert.equal(sentence("bad \x1b]52;c;eA==\x07 reason"), "bad \\u{1b}]52;c;eA==\\u{7} reason");
  assert.equal([...sentence("y".repeat(SENTENCE_CHARS + 10))].length, SENTENCE_CHARS);
});
