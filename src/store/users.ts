/** Users in Deno KV: ["user", lowercase name] → UserRecord. */

import type { PasswordHash } from "../crypto/password.ts";
import { usernameKey } from "../protocol/names.ts";
import type { UserRecord, UserStore } from "./types.ts";

export class KvUserStore implements UserStore {
  constructor(private readonly kv: Deno.Kv) {}

  async create(record: UserRecord): Promise<boolean> {
    const key = ["user", usernameKey(record.name)];
    const result = await this.kv.atomic().check({ key, versionstamp: null }).set(key, record)
      .commit();
    return result.ok;
  }

  async get(name: string): Promise<UserRecord | null> {
    return (await this.kv.get<UserRecord>(["user", usernameKey(name)])).value;
  }

  async setPassword(name: string, password: PasswordHash): Promise<boolean> {
    const key = ["user", usernameKey(name)];
    const entry = await this.kv.get<UserRecord>(key);
    if (!entry.value) return false;
    const result = await this.kv.atomic().check(entry).set(key, { ...entry.value, password })
      .commit();
    // A concurrent change of the same user is rare; retrying once keeps the call simple.
    return result.ok || await this.setPassword(name, password);
  }
}
