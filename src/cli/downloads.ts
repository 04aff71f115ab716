/**
 * Received images and files on disk. Anyone can send an image to anyone (and to the world room),
 * so the client writes one without asking only when it comes from a friend, and only up to a
 * per-session budget; any other image is held in memory (bounded) until the user types
 * `/save N`, or quits. What is written is private: the folder 0700, each file 0600, under a name
 * made safe by `safeFileName`, never overwriting anything.
 */

import { join } from "node:path";
import { FILE_NAME_BYTES, safeFileName } from "../terminal/safe_text.ts";
import { UsageError } from "../terminal/usage.ts";

/** Images saved without asking in one session, by default: a busy day of photos from friends. */
export const AUTOSAVE_BYTES = 50 * 1024 * 1024;
/**
 * Unsaved images kept in memory for `/save N`: a few dozen at the server's default image limit
 * (2 MiB); older ones are dropped first, and the notice stays in history.
 */
export const HELD_BYTES = 32 * 1024 * 1024;
export const HELD_IMAGES = 100;
/** Tries at "name (N).ext" before giving up: a folder with this many copies is a mistake. */
const MAX_COPIES = 1000;

/** The session's budget in bytes: $PARLEY_AUTOSAVE_MIB (0 saves nothing without asking). */
export function autosaveBudget(): number {
  const text = Deno.env.get("PARLEY_AUTOSAVE_MIB");
  if (text === undefined || text === "") return AUTOSAVE_BYTES;
  const mib = Number(text);
  if (!Number.isFinite(mib) || mib < 0) {
    throw new UsageError(`PARLEY_AUTOSAVE_MIB "${text}" is not a number of MiB (0 or more)`);
  }
  return Math.floor(mib * 1024 * 1024);
}

/** The end of a file's name while it is being received. */
export const PART = ".part";

/** A file being received (Downloads.receive). */
export interface Receiving {
  /** Where the bytes go until the file is whole. */
  part: string;
  file: Deno.FsFile;
  /** Gives the whole file its name (beside anything already there); its path. */
  finish(): Promise<string>;
  /** Removes the partial file. */
  discard(): Promise<void>;
}

/** Why an image was not written: not from a friend, over the budget, or the write failed. */
export type HeldReason = "stranger" | "budget" | "failed";

/** What became of a received image. */
export type Kept =
  | { saved: string }
  | { held: number; why: HeldReason; error?: string }
  | { dropped: HeldReason; error?: string };

interface HeldImage {
  from: string;
  name: string;
  data: Uint8Array;
}

export class Downloads {
  #spent = 0;
  #held = new Map<number, HeldImage>();
  #heldBytes = 0;
  #nextHeld = 1;
  #dirReady = false;

  /** `own`: the folder is ours (the default one), so a loose mode on it is tightened. */
  constructor(readonly dir: string, readonly budget: number, private readonly own = true) {
    if (!(budget >= 0)) throw new RangeError(`budget must be 0 or more, got ${budget}`);
  }

  /** Bytes saved without asking in this session. */
  get spent(): number {
    return this.#spent;
  }

  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** An image received: written if from a friend and within the budget, else held. */
  async image(from: string, name: string, data: Uint8Array, friend: boolean): Promise<Kept> {
    let why: HeldReason = !friend ? "stranger" : "budget";
    let error: string | undefined;
    if (friend && this.#spent + data.length <= this.budget) {
      try {
        const saved = await this.save(from, name, data);
        this.#spent += data.length;
        return { saved };
      } catch (e) {
        why = "failed";
        error = (e as Error).message;
      }
    }
    const held = this.#hold({ from, name, data });
    return held === null ? { dropped: why, error } : { held, why, error };
  }

  /** Keeps an image for `/save N`, dropping the oldest held ones to stay within the bounds. */
  #hold(image: HeldImage): number | null {
    if (image.data.length > HELD_BYTES) return null;
    while (this.#heldBytes + image.data.length > HELD_BYTES || this.#held.size >= HELD_IMAGES) {
      const [oldest, old] = this.#held.entries().next().value!;
      this.#held.delete(oldest);
      this.#heldBytes -= old.data.length;
    }
    const n = this.#nextHeld++;
    this.#held.set(n, image);
    this.#heldBytes += image.data.length;
    if (!(this.#heldBytes <= HELD_BYTES && this.#held.size <= HELD_IMAGES)) {
      throw new Error(`Held images over their bound: ${this.#heldBytes} bytes`);
    }
    return n;
  }

  /** Writes held image `n` (the user asked: no budget); it is then no longer held. */
  async saveHeld(n: number): Promise<{ path: string; from: string; name: string; size: number }> {
    const image = this.#held.get(n);
    if (!image) throw new RangeError(`Image ${n} is not held`);
    const path = await this.save(image.from, image.name, image.data);
    this.#held.delete(n);
    this.#heldBytes -= image.data.length;
    return { path, from: image.from, name: image.name, size: image.data.length };
  }

  /** Held image numbers, oldest first. */
  held(): number[] {
    return [...this.#held.keys()];
  }

  /** Writes `data` as "<from>-<name>" (made safe), mode 0600, beside anything already there. */
  async save(from: string, name: string, data: Uint8Array): Promise<string> {
    const { path, file } = await this.create(from, name);
    try {
      let at = 0;
      while (at < data.length) at += await file.write(data.subarray(at));
    } finally {
      file.close();
    }
    return path;
  }

  /** Creates a new, empty file for "<from>-<name>", mode 0600, and opens it for writing. */
  async create(from: string, name: string): Promise<{ path: string; file: Deno.FsFile }> {
    await this.#ensureDir();
    let file: Deno.FsFile | undefined;
    const path = await this.#unused(from, name, "", async (path) => {
      file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    });
    return { path, file: file! };
  }

  /**
   * A file being received: written as "<name>.part", and given its name only by `finish`, once
   * it is whole and checked; `discard` removes it. A transfer that fails, or a client killed
   * midway, never leaves a partial file under the name of the file.
   */
  async receive(from: string, name: string): Promise<Receiving> {
    await this.#ensureDir();
    let file: Deno.FsFile | undefined;
    const part = await this.#unused(from, name, PART, async (path) => {
      file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    });
    return {
      part,
      file: file!,
      finish: () =>
        this.#unused(from, name, "", async (path) => {
          // A hard link fails if the name is taken, where a rename would replace that file.
          try {
            await Deno.link(part, path);
          } catch (e) {
            if (e instanceof Deno.errors.AlreadyExists) throw e;
            // A file system without hard links: renamed, if the name is free.
            if (await Deno.lstat(path).then(() => true, () => false)) {
              throw new Deno.errors.AlreadyExists(path);
            }
            return await Deno.rename(part, path);
          }
          // Named already: a part that cannot go (removed meanwhile by a quit) changes nothing.
          await Deno.remove(part).catch(() => {});
        }),
      discard: () => Deno.remove(part).catch(() => {}),
    };
  }

  /**
   * Calls `take` with "<from>-<name>" made safe, then "… (1)", "… (2)"… (each followed by
   * `suffix`) while it throws AlreadyExists; the path taken.
   */
  async #unused(
    from: string,
    name: string,
    suffix: string,
    take: (path: string) => Promise<void>,
  ): Promise<string> {
    // Room for " (999)" within the file system's 255 bytes.
    const safe = safeFileName(`${from}-${name}`, FILE_NAME_BYTES);
    const dot = safe.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [safe.slice(0, dot), safe.slice(dot)] : [safe, ""];
    for (let i = 0; i < MAX_COPIES; i++) {
      const path = join(this.dir, (i === 0 ? safe : `${stem} (${i})${ext}`) + suffix);
      try {
        await take(path);
        return path;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
    }
    throw new Error(`${MAX_COPIES} files named like ${safe} already exist in ${this.dir}`);
  }

  async #ensureDir(): Promise<void> {
    if (this.#dirReady) return;
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (this.own && Deno.build.os !== "windows") {
      // Folders made by earlier versions were 0755.
      const mode = (await Deno.stat(this.dir)).mode! & 0o777;
      if (mode !== 0o700) await Deno.chmod(this.dir, 0o700);
    }
    this.#dirReady = true;
  }
}
