/**
 * Groups in Deno KV:
 *   ["group", id] → GroupRecord              ["group_seq"] → last id given (atomic counter)
 *   ["member", id, user] → display name      ["member_of", user, id] → true
 */

import type { GroupRecord, GroupStore, NamedUser } from "./types.ts";

export class KvGroupStore implements GroupStore {
  constructor(private readonly kv: Deno.Kv) {}

  async create(name: string, creator: string, members: NamedUser[]): Promise<GroupRecord> {
    // Optimistic: read the counter, commit only if nobody moved it meanwhile.
    while (true) {
      const counter = await this.kv.get<number>(["group_seq"]);
      const id = (counter.value ?? 0) + 1;
      const record: GroupRecord = { id, name, creator, created: new Date() };
      const op = this.kv.atomic().check(counter).set(["group_seq"], id).set(["group", id], record);
      for (const m of members) {
        op.set(["member", id, m.user], m.name).set(["member_of", m.user, id], true);
      }
      if ((await op.commit()).ok) return record;
    }
  }

  async get(id: number): Promise<GroupRecord | null> {
    return (await this.kv.get<GroupRecord>(["group", id])).value;
  }

  async members(id: number): Promise<NamedUser[]> {
    const out: NamedUser[] = [];
    for await (const e of this.kv.list<string>({ prefix: ["member", id] })) {
      out.push({ user: e.key[2] as string, name: e.value });
    }
    return out;
  }

  async isMember(id: number, user: string): Promise<boolean> {
    return (await this.kv.get(["member", id, user])).versionstamp !== null;
  }

  async addMember(id: number, member: NamedUser): Promise<boolean> {
    const key = ["member", id, member.user];
    const group = await this.kv.get(["group", id]);
    const result = await this.kv.atomic()
      .check(group) // the group still exists and is the one we saw
      .check({ key, versionstamp: null })
      .set(key, member.name)
      .set(["member_of", member.user, id], true)
      .commit();
    return result.ok && group.versionstamp !== null;
  }

  async removeMember(id: number, user: string): Promise<NamedUser[]> {
    await this.kv.atomic().delete(["member", id, user]).delete(["member_of", user, id]).commit();
    const remaining = await this.members(id);
    if (remaining.length === 0) await this.kv.delete(["group", id]);
    return remaining;
  }

  async groupsOf(user: string): Promise<GroupRecord[]> {
    const ids: number[] = [];
    for await (const e of this.kv.list({ prefix: ["member_of", user] })) {
      ids.push(e.key[2] as number);
    }
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((g): g is GroupRecord => g !== null);
  }

  async countOf(user: string): Promise<number> {
    let n = 0;
    for await (const _ of this.kv.list({ prefix: ["member_of", user] })) n++;
    return n;
  }
}
