/**
 * Blocks in Deno KV, kept both ways so that either side's view is one prefix read:
 *   ["block", blocker, blocked] → blocked's display name   ["blocked_by", blocked, blocker] → true
 * Every private message asks whether its two users are apart, so each user's set of "blocks
 * either way" is kept in memory once read; this process owns the store, and add() and remove()
 * drop the sets of both sides once committed.
 */

import type { BlockStore, NamedUser } from "./types.ts";
import { blockedByKey, blockedByPrefix, blockKey, blocksPrefix } from "./kv_keys.ts";

/** Users whose block sets are kept in memory; past this the longest-held set goes. */
const CACHED_SETS = 10_000;
const NONE: ReadonlySet<string> = Object.freeze(new Set<string>());

export class KvBlockStore implements BlockStore {
  readonly #sets = new Map<string, ReadonlySet<string>>();
  readonly #reading = new Map<string, Promise<ReadonlySet<string>>>();

  constructor(private readonly kv: Deno.Kv) {}

  #forget(...users: string[]): void {
    for (const user of users) {
      this.#sets.delete(user);
      this.#reading.delete(user);
    }
  }

  async add(
    blocker: NamedUser,
    blocked: NamedUser,
    max: number,
  ): Promise<"added" | "already" | "full"> {
    // Handlers refuse a block of oneself; one here would hide the user from their own view.
    if (blocker.user === blocked.user) throw new Error(`A user cannot block themself`);
    const key = blockKey(blocker.user, blocked.user);
    while (true) {
      const existing = await this.kv.get(key);
      if (existing.versionstamp !== null) return "already";
      if ((await this.list(blocker.user)).length >= max) return "full";
      const result = await this.kv.atomic()
        .check(existing)
        .set(key, blocked.name)
        .set(blockedByKey(blocked.user, blocker.user), true)
        .commit();
      this.#forget(blocker.user, blocked.user);
      if (result.ok) return "added";
    }
  }

  async remove(blocker: string, blocked: string): Promise<boolean> {
    const key = blockKey(blocker, blocked);
    if ((await this.kv.get(key)).versionstamp === null) return false;
    try {
      await this.kv.atomic().delete(key).delete(blockedByKey(blocked, blocker)).commit();
    } finally {
      this.#forget(blocker, blocked);
    }
    return true;
  }

  async list(user: string): Promise<NamedUser[]> {
    const out: NamedUser[] = [];
    for await (const e of this.kv.list<string>({ prefix: blocksPrefix(user) })) {
      out.push({ user: e.key[2] as string, name: e.value });
    }
    return out;
  }

  async blocked(user: string, other: string): Promise<boolean> {
    return (await this.kv.get(blockKey(user, other))).versionstamp !== null;
  }

  either(user: string): ReadonlySet<string> | Promise<ReadonlySet<string>> {
    const known = this.#sets.get(user);
    if (known) return known;
    const inFlight = this.#reading.get(user);
    if (inFlight) return inFlight;
    const reading = this.#read(user).then((set) => {
      // Forgotten meanwhile (a block changed): not kept, the next ask reads again.
      if (this.#reading.get(user) !== reading) return set;
      this.#reading.delete(user);
      this.#sets.set(user, set);
      if (this.#sets.size > CACHED_SETS) this.#sets.delete(this.#sets.keys().next().value!);
      return set;
    }, (e) => {
      if (this.#reading.get(user) === reading) this.#reading.delete(user);
      throw e;
    });
    this.#reading.set(user, reading);
    return reading;
  }

  async clear(user: string): Promise<void> {
    for (const other of await this.either(user)) {
      await this.remove(user, other);
      await this.remove(other, user);
    }
  }

  async #read(user: string): Promise<ReadonlySet<string>> {
    const out = new Set<string>();
    for (const prefix of [blocksPrefix(user), blockedByPrefix(user)]) {
      for await (const e of this.kv.list({ prefix })) out.add(e.key[2] as string);
    }
    return out.size > 0 ? out : NONE; // most users: one shared empty set
  }
}
