/** Users in Deno KV: ["user", lowercase name] → UserRecord. */

import type { PasswordHash } from "../crypto/password.ts";
import { usernameKey } from "../protocol/names.ts";
import type { UserRecord, UserStore } from "./types.ts";

/** Users remembered in memory: every message names one, and this process makes all writes. */
const CACHE_SIZE = 50_000;

export class KvUserStore implements UserStore {
  readonly #cache = new Map<string, UserRecord>();

  constructor(private readonly kv: Deno.Kv) {}

  #remember(key: string, record: UserRecord): void {
    this.#cache.delete(key);
    this.#cache.set(key, record);
    if (this.#cache.size > CACHE_SIZE) this.#cache.delete(this.#cache.keys().next().value!);
  }

  async create(record: UserRecord): Promise<boolean> {
    const name = usernameKey(record.name);
    const key = ["user", name];
    const result = await this.kv.atomic().check({ key, versionstamp: null }).set(key, record)
      .commit();
    if (result.ok) this.#remember(name, record);
    return result.ok;
  }

  get(name: string): UserRecord | null | Promise<UserRecord | null> {
    const key = usernameKey(name);
    return this.#cache.get(key) ?? this.#read(key);
  }

  async #read(key: string): Promise<UserRecord | null> {
    const record = (await this.kv.get<UserRecord>(["user", key])).value;
    if (record) this.#remember(key, record);
    return record;
  }

  async setPassword(name: string, password: PasswordHash): Promise<boolean> {
    const key = ["user", usernameKey(name)];
    const entry = await this.kv.get<UserRecord>(key);
    if (!entry.value) return false;
    const next = { ...entry.value, password };
    const result = await this.kv.atomic().check(entry).set(key, next).commit();
    if (result.ok) this.#remember(usernameKey(name), next);
    // A concurrent change of the same user is rare; retrying once keeps the call simple.
    return result.ok || await this.setPassword(name, password);
  }

  async remove(name: string): Promise<boolean> {
    const key = usernameKey(name);
    this.#cache.delete(key);
    const entry = await this.kv.get(["user", key]);
    if (entry.versionstamp === null) return false;
    await this.kv.delete(["user", key]);
    return true;
  }
}
