/** Friendships in Deno KV, kept both ways: ["friend", user, other] → other's display name. */

import type { FriendStore, NamedUser } from "./types.ts";

export class KvFriendStore implements FriendStore {
  constructor(private readonly kv: Deno.Kv) {}

  async add(a: NamedUser, b: NamedUser): Promise<boolean> {
    const ab = ["friend", a.user, b.user];
    const ba = ["friend", b.user, a.user];
    const result = await this.kv.atomic()
      .check({ key: ab, versionstamp: null })
      .set(ab, b.name)
      .set(ba, a.name)
      .commit();
    return result.ok;
  }

  async remove(a: string, b: string): Promise<boolean> {
    const ab = ["friend", a, b];
    const entry = await this.kv.get(ab);
    if (entry.versionstamp === null) return false;
    await this.kv.atomic().delete(ab).delete(["friend", b, a]).commit();
    return true;
  }

  async list(user: string): Promise<NamedUser[]> {
    const out: NamedUser[] = [];
    for await (const e of this.kv.list<string>({ prefix: ["friend", user] })) {
      out.push({ user: e.key[2] as string, name: e.value });
    }
    return out;
  }

  async count(user: string): Promise<number> {
    let n = 0;
    for await (const _ of this.kv.list({ prefix: ["friend", user] })) n++;
    return n;
  }
}
