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

/**
 * Which queue a hash waits in. Checks of existing accounts' passwords (and their re-hashes) go
 * first; hashes for new accounts use at most a share of the slots, so that a flood of
 * registrations cannot hold up the logins of the people already here.
 */
export type HashLane = "login" | "register";

export interface HasherOptions {
  params: ScryptParams;
  /** Hashes running at once. */
  concurrency: number;
  /** Login hashes allowed to wait; past this, requests are refused with SERVER_BUSY. */
  queue: number;
}

/** Registration hashes allowed to wait: a handful, since each holds up the next for ~0.3 s. */
export const REGISTER_QUEUE = 8;

/** Slots registration may fill at once: half, at least one (so with one slot, it waits its turn). */
export function registerSlots(concurrency: number): number {
  return Math.max(1, Math.floor(concurrency / 2));
}

export class PasswordHasher {
  readonly #opts: HasherOptions;
  readonly #registerSlots: number;
  /** Checked when an account does not exist, so that the answer takes as long as a real check. */
  readonly #dummy: PasswordHash;
  #running = 0;
  #runningRegister = 0;
  #logins: (() => void)[] = [];
  #registrations: (() => void)[] = [];

  constructor(opts: HasherOptions) {
    this.#opts = opts;
    this.#registerSlots = registerSlots(opts.concurrency);
    const { N, r, p } = opts.params;
    this.#dummy = {
      alg: "scrypt",
      N,
      r,
      p,
      salt: randomBytes(SALT_BYTES),
      hash: randomBytes(HASH_BYTES),
    };
  }

  async hash(password: string, lane: HashLane = "login"): Promise<PasswordHash> {
    const salt = randomBytes(SALT_BYTES);
    const params = this.#opts.params;
    const hash = await this.#limited(lane, () => scrypt(password, salt, params));
    return { alg: "scrypt", N: params.N, r: params.r, p: params.p, salt, hash };
  }

  /** Checks a password against a stored hash, with the parameters stored beside it. */
  async verify(password: string, stored: PasswordHash): Promise<boolean> {
    const hash = await this.#limited("login", () => scrypt(password, stored.salt, stored));
    return hash.length === stored.hash.length && nc.timingSafeEqual(hash, stored.hash);
  }

  /**
   * Does the work of a check for an account that does not exist, with the configured
   * parameters, so that "no such user" and "wrong password" take the same time. Always false.
   */
  async verifyNobody(password: string): Promise<false> {
    const matched = await this.verify(password, this.#dummy);
    if (matched) throw new Error("A password matched the random dummy hash");
    return false;
  }

  /** True when a stored hash uses weaker parameters than the configured ones. */
  isOutdated(stored: PasswordHash): boolean {
    const want = this.#opts.params;
    return stored.N < want.N || stored.r < want.r || stored.p < want.p;
  }

  /** Whether a hash of `lane` may take a slot now, ahead of no one who waits. */
  #mayStart(lane: HashLane): boolean {
    if (this.#running >= this.#opts.concurrency) return false;
    if (lane === "login") return this.#logins.length === 0;
    return this.#logins.length === 0 && this.#registrations.length === 0 &&
      this.#runningRegister < this.#registerSlots;
  }

  #start(lane: HashLane): void {
    this.#running++;
    if (lane === "register") this.#runningRegister++;
    if (this.#running > this.#opts.concurrency || this.#runningRegister > this.#registerSlots) {
      throw new Error(`Hash slots overfilled: ${this.#running}, ${this.#runningRegister} new`);
    }
  }

  /** Hands free slots to waiting hashes: logins first, registrations within their share. */
  #pump(): void {
    while (this.#running < this.#opts.concurrency) {
      const login = this.#logins.shift();
      if (login) {
        this.#start("login");
        login();
        continue;
      }
      if (this.#runningRegister >= this.#registerSlots) return;
      const registration = this.#registrations.shift();
      if (!registration) return;
      this.#start("register");
      registration();
    }
  }

  async #limited<T>(lane: HashLane, work: () => Promise<T>): Promise<T> {
    if (this.#mayStart(lane)) {
      this.#start(lane);
    } else {
      const waiting = lane === "login" ? this.#logins : this.#registrations;
      const cap = lane === "login" ? this.#opts.queue : REGISTER_QUEUE;
      if (waiting.length >= cap) {
        throw new ParleyError(
          ErrorCode.SERVER_BUSY,
          lane === "login"
            ? "The server is busy with logins; try again shortly"
            : "The server is busy with new accounts; try again shortly",
        );
      }
      // #pump takes the slot for us before it resolves, so the cap is never exceeded.
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    try {
      return await work();
    } finally {
      this.#release(lane);
    }
  }

  #release(lane: HashLane): void {
    this.#running--;
    if (lane === "register") this.#runningRegister--;
    if (this.#running < 0 || this.#runningRegister < 0) throw new Error("Hash slots underflow");
    this.#pump();
  }
}
