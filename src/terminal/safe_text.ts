/**
 * Text from the network, made safe to print and to use as a file name. A terminal obeys control
 * characters: printed raw, a message, a file name or a group name could set the window title,
 * write the clipboard (OSC 52), rewrite a line already shown, hide text or clear the screen, and
 * bidi overrides or zero-width characters make one name look like another. Every string that
 * came from the network goes through `visible` (or `visibleLines`, or the `shown` tag) before it
 * is printed; the characters that act instead of showing are printed as `\u{..}`.
 */

/**
 * Code points that act on the terminal or do not show: C0 and C1 controls and DEL (Cc), format
 * characters (Cf: bidi controls, zero-width space and joiners, soft hyphen, BOM, tags), line
 * and paragraph separators, lone surrogates, and the blank-looking Hangul fillers and combining
 * grapheme joiner, which are letters or marks but show as nothing.
 */
const HIDDEN = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u034f\u115f\u1160\u3164\uffa0]$/u;
const HIDDEN_ANY = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u034f\u115f\u1160\u3164\uffa0]/u;
const PICTOGRAPH = /^\p{Extended_Pictographic}$/u;
const ZWJ = 0x200d;

/** A name, a reason or an error in a sentence: longer adds nothing a reader needs. */
export const FIELD_CHARS = 200;
/**
 * Our own sentence, which may quote the network (an error, a warning): long enough that no
 * sentence of ours is cut (a changed server key's warning says what to do at its end), short
 * enough that a server's 1 MiB error string does not fill the screen.
 */
export const SENTENCE_CHARS = 4000;
/** A message shows whole up to the server's default text limit (16 KiB). */
export const TEXT_CHARS = 16_384;
/** A pasted page shows whole; 16,000 empty lines would not scroll everything else away. */
export const TEXT_LINES = 200;

const ELLIPSIS = "…";

/** True when `text` holds a character that `visible` would escape (newlines and tabs count). */
export function hasHidden(text: string): boolean {
  return HIDDEN_ANY.test(text);
}

function escaped(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

/**
 * One line of text from the network, safe to print: controls, bidi and zero-width characters
 * shown as `\u{..}` (a newline too), at most `max` characters, cut with "…".
 */
export function visible(text: unknown, max = FIELD_CHARS): string {
  return render(text, max, 0);
}

/**
 * One of our own sentences that may quote the network (an error message): controls escaped as
 * by `visible`, but not cut at FIELD_CHARS, which is for one name or reason from others.
 */
export function sentence(text: unknown): string {
  return render(text, SENTENCE_CHARS, 0);
}

/**
 * Multi-line text from the network: as `visible`, but newlines (and CR LF) stay newlines and
 * tabs stay tabs, for at most `lines` lines; the caller indents the continuation lines.
 */
export function visibleLines(text: unknown, max = TEXT_CHARS, lines = TEXT_LINES): string {
  if (!(lines >= 1)) throw new RangeError(`lines must be at least 1, got ${lines}`);
  return render(text, max, lines);
}

/** A template tag: every interpolated value goes through `visible`; the literal parts are ours. */
export function shown(parts: TemplateStringsArray, ...values: unknown[]): string {
  let out = parts[0];
  for (let i = 0; i < values.length; i++) out += visible(values[i]) + parts[i + 1];
  return out;
}

function render(input: unknown, max: number, lines: number): string {
  if (!(max >= 1)) throw new RangeError(`max must be at least 1, got ${max}`);
  const text = typeof input === "string" ? input : String(input ?? "");
  let out = "";
  let used = 0; // code points in `out`
  let newlines = 0;
  let prev = -1;
  for (let i = 0; i < text.length;) {
    const cp = text.codePointAt(i)!;
    const next = i + (cp > 0xffff ? 2 : 1);
    let piece: string;
    let width = 1; // code points `piece` adds
    if (lines > 0 && cp === 0x0d && text.charCodeAt(next) === 0x0a) {
      i = next; // CR LF is a newline; the LF comes next
      continue;
    } else if (lines > 0 && cp === 0x0a) {
      if (++newlines >= lines) return out + ELLIPSIS;
      piece = "\n";
    } else if (lines > 0 && cp === 0x09) {
      piece = "\t";
    } else if (cp === ZWJ && joinsPictographs(text, prev, next)) {
      piece = "\u200d"; // inside an emoji sequence (👨‍👩‍👧) it only joins
    } else if (HIDDEN.test(String.fromCodePoint(cp)) || isLoneSurrogate(cp)) {
      piece = escaped(cp);
      width = piece.length;
    } else {
      piece = String.fromCodePoint(cp);
    }
    const last = next >= text.length;
    if (used + width > max - 1 && !(last && used + width <= max)) {
      // A joiner kept because a pictograph followed it would now join the ellipsis.
      return (prev === ZWJ ? out.slice(0, -1) : out) + ELLIPSIS;
    }
    out += piece;
    used += width;
    prev = cp;
    i = next;
  }
  return out;
}

function isLoneSurrogate(cp: number): boolean {
  return cp >= 0xd800 && cp <= 0xdfff;
}

function joinsPictographs(text: string, prev: number, next: number): boolean {
  if (prev < 0 || next >= text.length) return false;
  const after = text.codePointAt(next)!;
  return PICTOGRAPH.test(String.fromCodePoint(prev)) &&
    PICTOGRAPH.test(String.fromCodePoint(after));
}

/**
 * Longest file name we write, in UTF-8 bytes: file systems allow 255, and the name may still get
 * a " (12)" suffix; a longer name helps no one find the file.
 */
export const FILE_NAME_BYTES = 120;
/** An extension longer than this is part of the name, not an extension to keep when cutting. */
const EXTENSION_BYTES = 16;
/** Names Windows gives to devices, with any extension. */
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;
/** Separators, and the characters Windows refuses in a name. */
const UNSAFE_IN_NAME = /^[/\\<>:"|?*]$/;

const encoder = new TextEncoder();
const utf8Length = (s: string) => encoder.encode(s).length;

/**
 * A name from the network made safe to create in the downloads folder: one path component (no
 * separators, not "." or ".."), no control, bidi or zero-width characters (a right-to-left
 * override would make "gpj.exe" look like "exe.jpg"), no leading dot (hidden), no name Windows
 * reserves, at most `maxBytes` bytes of UTF-8 with its extension kept, and never empty.
 */
export function safeFileName(name: unknown, maxBytes = FILE_NAME_BYTES): string {
  if (!(maxBytes >= 24)) throw new RangeError(`maxBytes must be at least 24, got ${maxBytes}`);
  let s = "";
  for (const c of typeof name === "string" ? name : String(name ?? "")) {
    s += HIDDEN.test(c) || UNSAFE_IN_NAME.test(c) || isLoneSurrogate(c.codePointAt(0)!) ? "_" : c;
  }
  s = trimName(s);
  if (RESERVED.test(s)) s = `_${s}`;
  if (utf8Length(s) > maxBytes) {
    const dot = s.lastIndexOf(".");
    const ext = dot > 0 && utf8Length(s.slice(dot)) <= EXTENSION_BYTES && !/\s/.test(s.slice(dot))
      ? s.slice(dot)
      : "";
    s = trimName(cutBytes(s.slice(0, s.length - ext.length), maxBytes - utf8Length(ext))) + ext;
  }
  if (s === "" || s.startsWith(".")) s = `file${s}`;
  if (utf8Length(s) > maxBytes || s.includes("/") || s === "." || s === "..") {
    throw new Error(`safeFileName made an unsafe name: ${JSON.stringify(s)}`);
  }
  return s;
}

/** No leading dots or spaces (hidden files, confusing names), no trailing ones (Windows). */
function trimName(s: string): string {
  return s.replace(/^[.\s]+/u, "").replace(/[.\s]+$/u, "");
}

/** The longest prefix of `s` of at most `max` UTF-8 bytes, cut between code points. */
function cutBytes(s: string, max: number): string {
  let out = "";
  let bytes = 0;
  for (const c of s) {
    const n = utf8Length(c);
    if (bytes + n > max) break;
    out += c;
    bytes += n;
  }
  return out;
}
