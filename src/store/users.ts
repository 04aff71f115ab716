/**
 * Users in Deno KV: ["user", lowercase name] → UserRecord, and ["user_look", look-alike key] →
 * lowercase name, so that REGISTER can refuse a name that looks like a taken one.
 */

import type { PasswordHash } from "../crypto/password.ts";
import { usernameKey, usernameLookalikeKey } from "../protocol/names.ts";
import { newPasswordStamp, sameHash, stamped } from "./password_stamp.ts";
import type { UserRecord, UserStore } from "./types.ts";
import { allOf, LOOKALIKE_INDEXED_KEY, PREFIX, userKey, userLookKey } from "./kv_keys.ts";

/** Users remembered in memory: every message names one, and this process makes all writes. */
const CACHE_SIZE = 50_000;

export class KvUserStore implements UserStore {
  readonly #cache = new Map<string, UserRecord>();

  constructor(private readonly kv: Deno.Kv) {}

  /**
   * Opens the store, first giving the accounts of an older data dir their look-alike keys, once.
   * Where two old accounts share a key, the first keeps it; both keep working.
   */
  static async open(kv: Deno.Kv): Promise<KvUserStore> {
    if ((await kv.get(LOOKALIKE_INDEXED_KEY)).versionstamp === null) {
      for await (const e of kv.list<UserRecord>({ prefix: allOf(PREFIX.user) })) {
        const look = userLookKey(usernameLookalikeKey(e.value.name));
        await kv.atomic().check({ key: look, versionstamp: null })
          .set(look, usernameKey(e.value.name)).commit();
      }
      await kv.set(LOOKALIKE_INDEXED_KEY, 1);
    }
    return new KvUserStore(kv);
  }

  #remember(key: string, record: UserRecord): void {
    this.#cache.delete(key);
    this.#cache.set(key, record);
    if (this.#cache.size > CACHE_SIZE) this.#cache.delete(this.#cache.keys().next().value!);
  }

  async create(given: UserRecord): Promise<boolean> {
    const record = stamped(given);
    const name = usernameKey(record.name);
    const key = userKey(name);
    const look = userLookKey(usernameLookalikeKey(record.name));
    const result = await this.kv.atomic()
      .check({ key, versionstamp: null }, { key: look, versionstamp: null })
      .set(key, record)
      .set(look, name)
      .commit();
    if (result.ok) this.#remember(name, record);
    return result.ok;
  }

  get(name: string): UserRecord | null | Promise<UserRecord | null> {
    const key = usernameKey(name);
    return this.#cache.get(key) ?? this.#read(key);
  }

  async #read(key: string): Promise<UserRecord | null> {
    const record = (await this.kv.get<UserRecord>(userKey(key))).value;
    if (record) this.#remember(key, record);
    return record;
  }

  async lookalike(name: string): Promise<string | null> {
    const owner = (await this.kv.get<string>(userLookKey(usernameLookalikeKey(name)))).value;
    if (owner === null) return null;
    return (await this.get(owner))?.name ?? null;
  }

  async setPassword(name: string, password: PasswordHash): Promise<string | null> {
    const passwordStamp = newPasswordStamp();
    const set = await this.#change(name, (cur) => ({ ...cur, password, passwordStamp }));
    return set ? passwordStamp : null;
  }

  rehash(name: string, from: PasswordHash, to: PasswordHash): Promise<boolean> {
    return this.#change(
      name,
      (cur) => sameHash(cur.password, from) ? { ...cur, password: to } : null,
    );
  }

  /** Writes `next` of the user's record, if it exists and `next` gives one; true if written. */
  async #change(name: string, next: (cur: UserRecord) => UserRecord | null): Promise<boolean> {
    const key = userKey(usernameKey(name));
    const entry = await this.kv.get<UserRecord>(key);
    const record = entry.value && next(entry.value);
    if (!record) return false;
    const result = await this.kv.atomic().check(entry).set(key, record).commit();
    if (result.ok) this.#remember(usernameKey(name), record);
    // A concurrent change of the same user is rare; retrying keeps the call simple.
    return result.ok || await this.#change(name, next);
  }

  async remove(name: string): Promise<boolean> {
    const key = usernameKey(name);
    this.#cache.delete(key);
    const entry = await this.kv.get(userKey(key));
    if (entry.versionstamp === null) return false;
    const look = userLookKey(usernameLookalikeKey(key));
    const atomic = this.kv.atomic().delete(userKey(key));
    // Only the account's own look-alike key: an older account may share it and hold it.
    if ((await this.kv.get<string>(look)).value === key) atomic.delete(look);
    await atomic.commit();
    return true;
  }
}
