/**
 * Password hashing with scrypt: a per-user salt, the parameters stored beside the hash, a
 * constant-time compare, and a small concurrency cap so that hashing (tens to hundreds of ms,
 * 128 MiB each at N=2^17) runs off the event loop without starving chat.
 */

import * as nc from "node:crypto";
import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import { randomBytes } from "./keys.ts";

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** What is stored for a password; never the password itself. */
export interface PasswordHash extends ScryptParams {
  alg: "scrypt";
  salt: Uint8Array;
  hash: Uint8Array;
}

const SALT_BYTES = 16;
const HASH_BYTES = 32;

/** scrypt needs 128·N·r bytes; node's default cap (32 MiB) is below OWASP's N=2^17, r=8. */
function maxmemFor({ N, r, p }: ScryptParams): number {
  return 128 * N * r + 128 * r * p + 16 * 1024 * 1024;
}

function scrypt(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    nc.scrypt(
      password.normalize("NFC"),
      salt,
      HASH_BYTES,
      { N: params.N, r: params.r, p: params.p, maxmem: maxmemFor(params) },
      (err, key) => err ? reject(err) : resolve(new Uint8Array(key)),
    );
  });
}

export interface HasherOptions {
  params: ScryptParams;
  /** Hashes running at once. */
  concurrency: number;
  /** Hashes allowed to wait; past this, requests are refused with SERVER_BUSY. */
  queue: number;
}

export class PasswordHasher {
  readonly #opts: HasherOptions;
  #running = 0;
  #waiting: (() => void)[] = [];

  constructor(opts: HasherOptions) {
    this.#opts = opts;
  }

  async hash(password: string): Promise<PasswordHash> {
    const salt = randomBytes(SALT_BYTES);
    const params = this.#opts.params;
    const hash = await this.#limited(() => scrypt(password, salt, params));
    return { alg: "scrypt", N: params.N, r: params.r, p: params.p, salt, hash };
  }

  /** Checks a password against a stored hash, with the parameters stored beside it. */
  async verify(password: string, stored: PasswordHash): Promise<boolean> {
    const hash = await this.#limited(() => scrypt(password, stored.salt, stored));
    return hash.length === stored.hash.length && nc.timingSafeEqual(hash, stored.hash);
  }

  /** True when a stored hash uses weaker parameters than the configured ones. */
  isOutdated(stored: PasswordHash): boolean {
    const want = this.#opts.params;
    return stored.N < want.N || stored.r < want.r || stored.p < want.p;
  }

  async #limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running < this.#opts.concurrency) {
      this.#running++;
    } else {
      if (this.#waiting.length >= this.#opts.queue) {
        throw new ParleyError(
          ErrorCode.SERVER_BUSY,
          "The server is busy with logins; try again shortly",
        );
      }
      // The finishing hash hands its slot straight to us, so the cap is never exceeded.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
