/**
 * Groups in Deno KV:
 *   ["group", id] → GroupRecord              ["group_seq"] → last id given (atomic counter)
 *   ["member", id, user] → display name      ["member_of", user, id] → true
 */

import type { AddMemberResult, GroupRecord, GroupStore, NamedUser } from "./types.ts";

export class KvGroupStore implements GroupStore {
  constructor(private readonly kv: Deno.Kv) {}

  async create(name: string, creator: string, members: NamedUser[]): Promise<GroupRecord> {
    // Optimistic: read the counter, commit only if nobody moved it meanwhile.
    while (true) {
      const counter = await this.kv.get<number>(["group_seq"]);
      const id = (counter.value ?? 0) + 1;
      const record: GroupRecord = { id, name, creator, created: new Date(), size: members.length };
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

  async addMember(id: number, member: NamedUser, max: number): Promise<AddMemberResult> {
    const key = ["member", id, member.user];
    // Every join and leave rewrites the group record, so concurrent ones retry instead of both
    // passing the size check.
    while (true) {
      const [group, existing] = await this.kv.getMany<[GroupRecord, string]>([["group", id], key]);
      if (!group.value) return "no_group";
      if (existing.versionstamp !== null) return "already_member";
      if (group.value.size >= max) return "full";
      const result = await this.kv.atomic()
        .check(group)
        .check(existing)
        .set(["group", id], { ...group.value, size: group.value.size + 1 })
        .set(key, member.name)
        .set(["member_of", member.user, id], true)
        .commit();
      if (result.ok) return "added";
    }
  }

  async removeMember(id: number, user: string): Promise<NamedUser[]> {
    while (true) {
      const [group, existing] = await this.kv.getMany<[GroupRecord, string]>([["group", id], [
        "member",
        id,
        user,
      ]]);
      if (!group.value || existing.versionstamp === null) return await this.members(id);
      const op = this.kv.atomic()
        .check(group)
        .check(existing)
        .delete(["member", id, user])
        .delete(["member_of", user, id]);
      // The last member out takes the group with them.
      if (group.value.size <= 1) op.delete(["group", id]);
      else op.set(["group", id], { ...group.value, size: group.value.size - 1 });
      if ((await op.commit()).ok) return await this.members(id);
    }
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
