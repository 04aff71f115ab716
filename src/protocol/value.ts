/**
 * The typed value codec: seed 000's seven types plus null, as type-length-value.
 *
 * Every value is `tag u8 | length u32 BE | payload`. A dict payload is a run of
 * `key length u8 | key UTF-8 | value`; a list payload is a run of values. Pure: no I/O.
 */

import { DecodeError } from "./errors.ts";

export type Value =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | Date
  | EncodedValue
  | DictPieces
  | Value[]
  | { [key: string]: Value };

/**
 * A value encoded once and sent many times (the world backlog in every INITIALIZE): the encoder
 * copies its bytes as they are. Only the encoder knows it; decoding never produces one.
 */
export class EncodedValue {
  readonly bytes: Uint8Array;
  constructor(value: Value) {
    this.bytes = encodeValue(value);
  }
}

/**
 * A dict written from pieces in order: runs of entries encoded once (see encodeEntries) and
 * fields written each time. A message going to many recipients differs per recipient only in
 * its seq: the rest is encoded once. The pieces must not repeat a key. Only the encoder knows it.
 */
export class DictPieces {
  constructor(readonly pieces: readonly (Uint8Array | { [key: string]: Value })[]) {}
}

/** A dict's entries (key/value pairs, without the dict header), for DictPieces. */
export function encodeEntries(fields: { [key: string]: Value }): Uint8Array {
  return encodeValue(fields).subarray(VALUE_HEADER_BYTES);
}

export const Tag = {
  NULL: 0,
  INT: 1,
  STR: 2,
  LIST: 3,
  DICT: 4,
  BOOL: 5,
  BYTES: 6,
  DATETIME: 7,
} as const;

/** Header of every value: tag (1) and payload length (4). */
export const VALUE_HEADER_BYTES = 5;

/** Default nesting limit; a list or dict inside the top value is depth 2. */
export const DEFAULT_MAX_DEPTH = 16;

/** Dict keys are at most 255 UTF-8 bytes (their length is one byte). */
const MAX_KEY_BYTES = 255;

/** The largest Date the JS engine can represent, in milliseconds from the epoch. */
const MAX_DATE_MS = 8.64e15;

const utf8 = new TextEncoder();
/** Strings up to this length are tried as plain ASCII first, in JavaScript. */
const ASCII_FAST_PATH = 1024;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A growable output buffer; values are written in one pass. */
export class ByteWriter {
  #buf: Uint8Array<ArrayBuffer>;
  #view: DataView;
  length = 0;

  constructor(initial = 256) {
    this.#buf = new Uint8Array(initial);
    this.#view = new DataView(this.#buf.buffer);
  }

  #reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(n: number): void {
    this.#reserve(1);
    this.#buf[this.length++] = n;
  }

  /** Writes a value header (tag and payload length); returns where the length sits. */
  header(tag: number, length: number): number {
    this.#reserve(VALUE_HEADER_BYTES);
    this.#buf[this.length] = tag;
    this.#view.setUint32(this.length + 1, length);
    this.length += VALUE_HEADER_BYTES;
    return this.length - 4;
  }

  u32(n: number): void {
    this.#reserve(4);
    this.#view.setUint32(this.length, n);
    this.length += 4;
  }

  /** Writes a safe integer as a signed 64-bit big-endian number. */
  i64(n: number): void {
    this.#reserve(8);
    // Two 32-bit halves: a BigInt per integer was garbage on every message.
    const hi = Math.floor(n / 0x1_0000_0000);
    this.#view.setInt32(this.length, hi);
    this.#view.setUint32(this.length + 4, n - hi * 0x1_0000_0000);
    this.length += 8;
  }

  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }

  /**
   * Writes a string as UTF-8 and returns its byte length. A lone surrogate has no UTF-8 form: it
   * is refused rather than sent as U+FFFD.
   */
  utf8(s: string): number {
    this.#reserve(s.length * 3);
    // Most strings on the wire (keys, names, short texts) are ASCII: copying them here is far
    // cheaper than a call into the runtime's encoder.
    const buf = this.#buf;
    const start = this.length;
    let i = 0;
    if (s.length <= ASCII_FAST_PATH) {
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
    }
    if (i === s.length) {
      this.length += i;
      return i;
    }
    if (!s.isWellFormed()) throw new TypeError("Cannot encode a string with a lone surrogate");
    const { written } = utf8.encodeInto(s.slice(i), buf.subarray(start + i));
    this.length += i + written;
    return i + written;
  }

  /** Appends `n` bytes for the caller to fill in place; the view is valid until the next write. */
  claim(n: number): Uint8Array<ArrayBuffer> {
    this.#reserve(n);
    const at = this.length;
    this.length += n;
    return this.#buf.subarray(at, at + n);
  }

  /** Overwrites a byte written earlier (used to back-fill a key length). */
  patchU8(at: number, n: number): void {
    this.#buf[at] = n;
  }

  /** Overwrites a u32 written earlier (used to back-fill lengths). */
  patchU32(at: number, n: number): void {
    this.#view.setUint32(at, n);
  }

  /** Drops everything written after the first `n` bytes. */
  truncate(n: number): void {
    this.length = Math.min(n, this.length);
  }

  /** A copy of what was written. */
  finish(): Uint8Array<ArrayBuffer> {
    return this.#buf.slice(0, this.length);
  }

  /** What was written, without a copy: valid until the next write or truncate. */
  view(): Uint8Array<ArrayBuffer> {
    return this.#buf.subarray(0, this.length);
  }

  /** Bytes the buffer can hold without growing. */
  get capacity(): number {
    return this.#buf.length;
  }
}

/** The UTF-8 byte length of a string, without encoding it (a lone surrogate counts as U+FFFD). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
      continue;
    }
    // Three bytes for one unit, or four for a surrogate pair's two units: two more either way.
    n += 2;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

/** Appends one value to `w`. Throws TypeError for what the format cannot carry. */
export function writeValue(w: ByteWriter, v: Value): void {
  // Most common types first: this runs for every field of every message sent.
  if (typeof v === "string") {
    const at = w.header(Tag.STR, 0);
    w.patchU32(at, w.utf8(v));
  } else if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new TypeError(`Cannot encode "${v}": not a safe integer`);
    w.header(Tag.INT, 8);
    w.i64(v);
  } else if (v === null) {
    w.header(Tag.NULL, 0);
  } else if (typeof v === "boolean") {
    w.header(Tag.BOOL, 1);
    w.u8(v ? 1 : 0);
  } else if (v instanceof Uint8Array) {
    w.header(Tag.BYTES, v.length);
    w.bytes(v);
  } else if (v instanceof Date) {
    const ms = v.getTime();
    if (!Number.isSafeInteger(ms)) throw new TypeError("Cannot encode an invalid Date");
    w.header(Tag.DATETIME, 8);
    w.i64(ms);
  } else if (v instanceof EncodedValue) {
    w.bytes(v.bytes);
  } else if (v instanceof DictPieces) {
    const at = w.header(Tag.DICT, 0);
    for (const piece of v.pieces) {
      if (piece instanceof Uint8Array) w.bytes(piece);
      else writeEntries(w, piece);
    }
    w.patchU32(at, w.length - at - 4);
  } else if (Array.isArray(v)) {
    const at = w.header(Tag.LIST, 0);
    for (const item of v) writeValue(w, item);
    w.patchU32(at, w.length - at - 4);
  } else if (typeof v === "object") {
    const at = w.header(Tag.DICT, 0);
    writeEntries(w, v);
    w.patchU32(at, w.length - at - 4);
  } else {
    throw new TypeError(`Cannot encode a value of type "${typeof v}"`);
  }
}

/** Writes a dict's entries: key length, key and value for each field that is not undefined. */
function writeEntries(w: ByteWriter, v: { [key: string]: Value }): void {
  for (const key in v) {
    if (!Object.hasOwn(v, key)) continue;
    const item = v[key];
    if (item === undefined) continue;
    const keyAt = w.length;
    w.u8(0);
    const n = w.utf8(key);
    if (n === 0 || n > MAX_KEY_BYTES) {
      throw new TypeError(`Cannot encode dict key "${key}": must be 1 to 255 UTF-8 bytes`);
    }
    w.patchU8(keyAt, n);
    writeValue(w, item);
  }
}

/** Encodes one value to a fresh byte array. */
export function encodeValue(v: Value): Uint8Array {
  // One scratch buffer for every call (encoding never re-enters itself): the result is the only
  // allocation. A scratch that grew big for one large value is not kept.
  const w = scratch.capacity > SCRATCH_KEEP_BYTES ? (scratch = new ByteWriter()) : scratch;
  w.truncate(0);
  writeValue(w, v);
  return w.finish();
}

const SCRATCH_KEEP_BYTES = 64 * 1024;
let scratch = new ByteWriter();

/**
 * Decodes the value that starts at `offset` and must end by `end`.
 * Returns the value and the offset just past it. Every length is checked against what
 * remains before anything is read, so a hostile length cannot cause an allocation.
 */
export function readValue(
  bytes: Uint8Array,
  offset: number,
  end: number,
  maxDepth = DEFAULT_MAX_DEPTH,
): [Value, number] {
  const reader = new ValueReader(bytes);
  const value = reader.read(offset, end, maxDepth);
  return [value, reader.next];
}

/** Decodes exactly one value filling all of `bytes`. */
export function decodeValue(bytes: Uint8Array, maxDepth = DEFAULT_MAX_DEPTH): Value {
  const [value, next] = readValue(bytes, 0, bytes.length, maxDepth);
  if (next !== bytes.length) {
    throw new DecodeError(`${bytes.length - next} trailing bytes after the value`);
  }
  return value;
}

/** Decodes bytes below 0x80 (ASCII is Latin-1 too) of one array into strings. */
export interface Latin1View {
  toString(encoding: "latin1", start: number, stop: number): string;
}

/** Longest run handed to String.fromCharCode at once: its arguments go on the stack. */
const CHAR_CODE_RUN = 4096;

/** The portable view, for browsers: String.fromCharCode over the bytes. */
export function portableLatin1View(bytes: Uint8Array): Latin1View {
  return {
    toString(_encoding, start, stop) {
      let out = "";
      for (let at = start; at < stop; at += CHAR_CODE_RUN) {
        const run = bytes.subarray(at, Math.min(stop, at + CHAR_CODE_RUN));
        out += String.fromCharCode.apply(null, run as unknown as number[]);
      }
      return out;
    },
  };
}

let latin1View: (bytes: Uint8Array) => Latin1View = portableLatin1View;

/**
 * Installs a faster view where the platform has one: latin1_node.ts installs node's Buffer,
 * whose latin1 decoding builds ASCII strings fastest in Deno. Both give the same strings.
 */
export function useLatin1View(make: (bytes: Uint8Array) => Latin1View): void {
  latin1View = make;
}

/**
 * Reads values out of one byte array. `read` leaves the offset just past the value in `next`
 * instead of returning a pair: decoding is on every message's path, and the pairs were garbage.
 */
export class ValueReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  /** The same memory, as the installed Latin-1 view (a node Buffer in Deno: see asciiViews). */
  readonly #buffer: Latin1View;
  /** Offset just past the value the last `read` returned. */
  next = 0;
  /** Values decoded so far, containers and their items alike. */
  values = 0;
  readonly #maxValues: number;

  /** `maxValues` bounds the work of one reader: decoding more values throws. */
  constructor(bytes: Uint8Array, maxValues = Infinity) {
    this.#maxValues = maxValues;
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#buffer = latin1View(bytes);
  }

  /** Decodes the value at `offset`, which must end by `end`; sets `next`. */
  read(offset: number, end: number, depth: number): Value {
    if (depth <= 0) throw new DecodeError("Value nested too deeply");
    if (++this.values > this.#maxValues) {
      throw new DecodeError(`More than ${this.#maxValues} values in one frame`);
    }
    if (end - offset < VALUE_HEADER_BYTES) {
      throw new DecodeError(
        `Value header needs 5 bytes at offset ${offset}, ${end - offset} remain`,
      );
    }
    const bytes = this.#bytes;
    const tag = bytes[offset];
    const length = this.#view.getUint32(offset + 1);
    const start = offset + VALUE_HEADER_BYTES;
    if (length > end - start) {
      throw new DecodeError(
        `Value length ${length} at offset ${offset} exceeds the ${end - start} bytes that remain`,
      );
    }
    const stop = start + length;
    let value: Value;
    switch (tag) {
      case Tag.NULL:
        expectLength(tag, length, 0, offset);
        value = null;
        break;
      case Tag.BOOL: {
        expectLength(tag, length, 1, offset);
        const b = bytes[start];
        if (b > 1) throw new DecodeError(`Bool at offset ${offset} is ${b}, not 0 or 1`);
        value = b === 1;
        break;
      }
      case Tag.INT:
        expectLength(tag, length, 8, offset);
        value = readSafeInt(this.#view, start, "Int");
        break;
      case Tag.DATETIME: {
        expectLength(tag, length, 8, offset);
        const ms = readSafeInt(this.#view, start, "Datetime");
        if (Math.abs(ms) > MAX_DATE_MS) throw new DecodeError(`Datetime ${ms} is out of range`);
        value = new Date(ms);
        break;
      }
      case Tag.STR:
        value = this.#string(start, stop);
        break;
      case Tag.BYTES:
        value = length <= SLAB_VALUE_MAX_BYTES
          ? fromSlab(bytes, start, length)
          : bytes.slice(start, stop);
        break;
      case Tag.LIST: {
        const items: Value[] = [];
        let at = start;
        while (at < stop) {
          items.push(this.read(at, stop, depth - 1));
          at = this.next;
        }
        value = items;
        break;
      }
      case Tag.DICT:
        value = this.#dict(start, stop, depth);
        break;
      default:
        throw new DecodeError(`Unknown value tag ${tag} at offset ${offset}`);
    }
    this.next = stop;
    return value;
  }

  #dict(start: number, stop: number, depth: number): { [key: string]: Value } {
    const bytes = this.#bytes;
    const dict: { [key: string]: Value } = {};
    let at = start;
    while (at < stop) {
      const keyLength = bytes[at];
      if (keyLength === 0) throw new DecodeError(`Empty dict key at offset ${at}`);
      if (keyLength > stop - at - 1) {
        throw new DecodeError(`Dict key length ${keyLength} at offset ${at} runs past the dict`);
      }
      const key = this.#key(at + 1, at + 1 + keyLength);
      if (Object.hasOwn(dict, key)) throw new DecodeError(`Duplicate dict key "${key}"`);
      const item = this.read(at + 1 + keyLength, stop, depth - 1);
      if (key === "__proto__") {
        // Assignment would set the prototype; the key must stay plain data.
        Object.defineProperty(dict, key, {
          value: item,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        dict[key] = item;
      }
      at = this.next;
    }
    return dict;
  }

  /** Dict keys repeat in every message: short ASCII ones come from a small shared table. */
  #key(start: number, stop: number): string {
    const bytes = this.#bytes;
    const n = stop - start;
    if (n > KEY_CACHE_MAX_BYTES) return this.#string(start, stop);
    let hash = n;
    for (let i = start; i < stop; i++) {
      const c = bytes[i];
      if (c >= 0x80) return this.#string(start, stop);
      hash = (Math.imul(hash, 31) + c) | 0;
    }
    const slot = hash & (KEY_CACHE_SLOTS - 1);
    const hit = keyCache[slot];
    if (hit !== undefined && hit.length === n) {
      let i = 0;
      while (i < n && hit.charCodeAt(i) === bytes[start + i]) i++;
      if (i === n) return hit;
    }
    const key = this.#buffer.toString("latin1", start, stop);
    keyCache[slot] = key;
    return key;
  }

  #string(start: number, stop: number): string {
    const bytes = this.#bytes;
    let i = start;
    while (i < stop && bytes[i] < 0x80) i++;
    // Pure ASCII is Latin-1 too, and needs no validation.
    if (i === stop) return this.#buffer.toString("latin1", start, stop);
    try {
      return strictUtf8.decode(bytes.subarray(start, stop));
    } catch {
      throw new DecodeError(`Invalid UTF-8 at offset ${start}`);
    }
  }
}

/**
 * Byte values of at most this many bytes (message ids) are cut from a shared slab rather than
 * given an ArrayBuffer each: in Deno a fresh ArrayBuffer costs 1–3 µs, a view of one 0.05 µs, and
 * every chat message carries an id. A view keeps its whole slab alive, and serialising it (a Deno
 * KV value, structuredClone) writes the whole slab: code that stores a decoded value, or keeps it
 * for long, keeps `ownBytes(value)` instead. Larger values (tokens, keys, images) get their own.
 */
export const SLAB_VALUE_MAX_BYTES = 16;
/**
 * Small, so that a value kept long pins little: a client that never acknowledges keeps up to a few
 * thousand messages (and their ids) held for it, and each pins at most this much beside its own
 * size. A new slab every 64 ids costs next to nothing.
 */
const SLAB_BYTES = 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabAt = 0;

function fromSlab(src: Uint8Array, start: number, n: number): Uint8Array {
  if (slabAt + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabAt = 0;
  }
  const out = slab.subarray(slabAt, slabAt + n);
  // A loop beats set() for a few bytes: set() of a subarray makes another view first.
  for (let i = 0; i < n; i++) out[i] = src[start + i];
  slabAt += n;
  return out;
}

/** `b` itself if it fills its own buffer, else a copy that does (see SLAB_VALUE_MAX_BYTES). */
export function ownBytes(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}

/** Keys of at most this many bytes are looked up in the key table. */
const KEY_CACHE_MAX_BYTES = 32;
/** Slots in the key table (a power of two); a collision only costs a fresh string. */
const KEY_CACHE_SLOTS = 512;
const keyCache: (string | undefined)[] = new Array(KEY_CACHE_SLOTS);

function expectLength(tag: number, length: number, want: number, offset: number): void {
  if (length !== want) {
    throw new DecodeError(
      `Value with tag ${tag} at offset ${offset} has length ${length}, expected ${want}`,
    );
  }
}

function readSafeInt(view: DataView, at: number, what: string): number {
  const hi = view.getInt32(at);
  const lo = view.getUint32(at + 4);
  // Safe integers fit in 53 bits: the high word must lie in [-2^21, 2^21).
  if (hi < -0x200000 || hi >= 0x200000) {
    throw new DecodeError(`${what} is outside the safe integer range`);
  }
  const n = hi * 0x1_0000_0000 + lo;
  if (!Number.isSafeInteger(n)) throw new DecodeError(`${what} is outside the safe integer range`);
  return n;
}
