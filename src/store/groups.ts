/**
 * Groups in Deno KV:
 *   ["group", id] → GroupRecord              ["group_seq"] → last id given (atomic counter)
 *   ["member", id, user] → display name      ["member_of", user, id] → true
 */

import { ReadCache } from "./read_cache.ts";
import type { AddMemberResult, GroupRecord, GroupStore, NamedUser } from "./types.ts";

/**
 * Groups, member lists and each user's groups are kept in memory for this many keys each: a
 * group message needs the group and its members, a login the user's groups. Every change goes
 * through create, addMember or removeMember, which forget what they changed once committed.
 */
const CACHED = 10_000;
const NO_GROUPS: readonly number[] = Object.freeze([]);

export class KvGroupStore implements GroupStore {
  readonly #records = new ReadCache<number, GroupRecord | null>(CACHED, (g) => g !== null);
  // A group has members until its last one leaves and it goes: an empty list is a group that
  // does not exist, and probes of made-up ids are not kept.
  readonly #members = new ReadCache<number, NamedUser[]>(CACHED, (m) => m.length > 0);
  readonly #groupsOf = new ReadCache<string, readonly number[]>(CACHED);

  constructor(private readonly kv: Deno.Kv) {}

  /** Drops what a change to group `id` and these users' memberships made stale. */
  #forget(id: number, users: string[]): void {
    this.#records.forget(id);
    this.#members.forget(id);
    for (const user of users) this.#groupsOf.forget(user);
  }

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
      const committed = (await op.commit()).ok;
      this.#forget(id, members.map((m) => m.user));
      if (committed) return record;
    }
  }

  get(id: number): Promise<GroupRecord | null> {
    return this.#records.get(id, async () => (await this.kv.get<GroupRecord>(["group", id])).value);
  }

  async members(id: number): Promise<NamedUser[]> {
    // Callers may change their copy.
    return [...await this.#members.get(id, () => this.#readMembers(id))];
  }

  async #readMembers(id: number): Promise<NamedUser[]> {
    const out: NamedUser[] = [];
    for await (const e of this.kv.list<string>({ prefix: ["member", id] })) {
      out.push({ user: e.key[2] as string, name: e.value });
    }
    return out;
  }

  async isMember(id: number, user: string): Promise<boolean> {
    return (await this.#members.get(id, () => this.#readMembers(id))).some((m) => m.user === user);
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
      this.#forget(id, [member.user]);
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
      const committed = (await op.commit()).ok;
      this.#forget(id, [user]);
      if (committed) return await this.members(id);
    }
  }

  async groupsOf(user: string): Promise<GroupRecord[]> {
    const ids = await this.#idsOf(user);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((g): g is GroupRecord => g !== null);
  }

  async countOf(user: string): Promise<number> {
    return (await this.#idsOf(user)).length;
  }

  #idsOf(user: string): Promise<readonly number[]> {
    return this.#groupsOf.get(user, async () => {
      const ids: number[] = [];
      for await (const e of this.kv.list({ prefix: ["member_of", user] })) {
        ids.push(e.key[2] as number);
      }
      return ids.length > 0 ? ids : NO_GROUPS; // most users: one shared empty list
    });
  }
}
