/**
 * Friendships in Deno KV, kept both ways: ["friend", user, other] → other's display name.
 * Lists are read at every login and logout (presence goes to online friends), so the lists of
 * users seen lately are kept in memory; this process owns the store, and every change to a
 * friendship goes through add() or remove(), which drop the cached lists of both sides.
 */

import { ReadCache } from "./read_cache.ts";
import type { FriendStore, NamedUser } from "./types.ts";

/** Users whose friend lists are kept in memory; past this the longest-held list goes. */
const CACHED_LISTS = 10_000;
const NO_FRIENDS: readonly NamedUser[] = Object.freeze([]);

export class KvFriendStore implements FriendStore {
  readonly #lists = new ReadCache<string, readonly NamedUser[]>(CACHED_LISTS);

  constructor(private readonly kv: Deno.Kv) {}

  #forget(...users: string[]): void {
    for (const user of users) this.#lists.forget(user);
  }

  async add(a: NamedUser, b: NamedUser): Promise<boolean> {
    const ab = ["friend", a.user, b.user];
    const ba = ["friend", b.user, a.user];
    const result = await this.kv.atomic()
      .check({ key: ab, versionstamp: null })
      .set(ab, b.name)
      .set(ba, a.name)
      .commit();
    this.#forget(a.user, b.user);
    return result.ok;
  }

  async remove(a: string, b: string): Promise<boolean> {
    const ab = ["friend", a, b];
    const entry = await this.kv.get(ab);
    if (entry.versionstamp === null) return false;
    try {
      await this.kv.atomic().delete(ab).delete(["friend", b, a]).commit();
    } finally {
      this.#forget(a, b);
    }
    return true;
  }

  async list(user: string): Promise<NamedUser[]> {
    // Callers may sort or change their copy.
    return [...await this.#lists.get(user, () => this.#read(user))];
  }

  async #read(user: string): Promise<readonly NamedUser[]> {
    const out: NamedUser[] = [];
    for await (const e of this.kv.list<string>({ prefix: ["friend", user] })) {
      out.push({ user: e.key[2] as string, name: e.value });
    }
    return out.length > 0 ? out : NO_FRIENDS; // many users: one shared empty list
  }

  async count(user: string): Promise<number> {
    return (await this.list(user)).length;
  }
}
