/**
 * Groups in Deno KV:
 *   ["group", id] → GroupRecord              ["group_seq"] → last id given (atomic counter)
 *   ["member", id, user] → display name      ["member_of", user, id] → true
 *   ["group_pending", id] → Date: a group too large for one commit, while its members are written
 */

import { ReadCache } from "./read_cache.ts";
import type { AddMemberResult, GroupRecord, GroupStore, NamedUser } from "./types.ts";
import {
  allOf,
  GROUP_SEQ_KEY,
  groupKey,
  groupPendingKey,
  memberKey,
  memberOfKey,
  memberOfPrefix,
  membersPrefix,
  PREFIX,
} from "./kv_keys.ts";

/**
 * Groups, member lists and each user's groups are kept in memory for this many keys each: a
 * group message needs the group and its members, a login the user's groups. Every change goes
 * through create, addMember or removeMember, which forget what they changed once committed.
 */
const CACHED = 10_000;
const NO_GROUPS: readonly number[] = Object.freeze([]);
/**
 * Members written per commit: two rows each, and KV takes at most 1000 mutations per atomic
 * commit (a member's rows are under 200 bytes, far from its 800 KiB). 450 leaves room for the
 * counter, the record and the in-flight marker.
 */
export const MEMBERS_PER_COMMIT = 450;

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
    if (members.length <= MEMBERS_PER_COMMIT) {
      // Optimistic: read the counter, commit only if nobody moved it meanwhile.
      while (true) {
        const counter = await this.kv.get<number>(GROUP_SEQ_KEY);
        const id = (counter.value ?? 0) + 1;
        const record = this.#record(id, name, creator, members);
        const op = this.kv.atomic().check(counter).set(GROUP_SEQ_KEY, id).set(groupKey(id), record);
        for (const m of members) {
          op.set(memberKey(id, m.user), m.name).set(memberOfKey(m.user, id), true);
        }
        const committed = (await op.commit()).ok;
        this.#forget(id, members.map((m) => m.user));
        if (committed) return record;
      }
    }
    return await this.#createLarge(name, creator, members);
  }

  #record(id: number, name: string, creator: string, members: NamedUser[]): GroupRecord {
    return { id, name, creator, created: new Date(), size: members.length };
  }

  /**
   * A group with more members than one commit takes: the id is taken with an in-flight marker,
   * the members go in commits of their own, and the record comes last, with the marker's delete.
   * Until then the group does not exist (every reader checks the record first); a crash in
   * between leaves a marker, and the next start deletes its members (sweep).
   */
  async #createLarge(name: string, creator: string, members: NamedUser[]): Promise<GroupRecord> {
    let id: number;
    while (true) {
      const counter = await this.kv.get<number>(GROUP_SEQ_KEY);
      id = (counter.value ?? 0) + 1;
      const ok = (await this.kv.atomic().check(counter).set(GROUP_SEQ_KEY, id)
        .set(groupPendingKey(id), new Date()).commit()).ok;
      if (ok) break;
    }
    const users = members.map((m) => m.user);
    try {
      for (let i = 0; i < members.length; i += MEMBERS_PER_COMMIT) {
        const op = this.kv.atomic();
        for (const m of members.slice(i, i + MEMBERS_PER_COMMIT)) {
          op.set(memberKey(id, m.user), m.name).set(memberOfKey(m.user, id), true);
        }
        if (!(await op.commit()).ok) throw new Error(`Writing the members of group ${id} failed`);
      }
      const record = this.#record(id, name, creator, members);
      const done = await this.kv.atomic().set(groupKey(id), record).delete(groupPendingKey(id))
        .commit();
      if (!done.ok) throw new Error(`Writing group ${id} failed`);
      return record;
    } catch (e) {
      // The members written so far go now (they count against each one's groups), or at the
      // next start if this fails too.
      await this.#dropUnfinished(id).catch(() => {});
      throw e;
    } finally {
      // Readers may have seen some members before the record: they saw no group, but the lists.
      this.#forget(id, users);
    }
  }

  /**
   * At start: groups whose creation a crash cut off (a marker, no record) lose the members
   * written so far. Runs before the server accepts connections. Returns how many went.
   */
  async sweep(): Promise<number> {
    let swept = 0;
    for await (const e of this.kv.list({ prefix: allOf(PREFIX.groupPending) })) {
      const id = e.key[1] as number;
      const record = await this.kv.get(groupKey(id));
      if (record.value === null) {
        await this.#dropUnfinished(id);
        swept++;
      } else {
        await this.kv.delete(e.key);
      }
    }
    return swept;
  }

  /** Deletes the members of group `id`, whose record was never written, then its marker. */
  async #dropUnfinished(id: number): Promise<void> {
    const users: string[] = [];
    let op = this.kv.atomic();
    for await (const m of this.kv.list<string>({ prefix: membersPrefix(id) })) {
      const user = m.key[2] as string;
      users.push(user);
      op.delete(m.key).delete(memberOfKey(user, id));
      if (users.length % MEMBERS_PER_COMMIT === 0) {
        if (!(await op.commit()).ok) throw new Error(`Deleting group ${id}'s members failed`);
        op = this.kv.atomic();
      }
    }
    // The marker last: until it goes, the next start tries again.
    if (!(await op.delete(groupPendingKey(id)).commit()).ok) {
      throw new Error(`Deleting group ${id}'s members failed`);
    }
    this.#forget(id, users);
  }

  get(id: number): Promise<GroupRecord | null> {
    return this.#records.get(id, async () => (await this.kv.get<GroupRecord>(groupKey(id))).value);
  }

  async members(id: number): Promise<NamedUser[]> {
    // Callers may change their copy.
    return [...await this.#members.get(id, () => this.#readMembers(id))];
  }

  async #readMembers(id: number): Promise<NamedUser[]> {
    const out: NamedUser[] = [];
    for await (const e of this.kv.list<string>({ prefix: membersPrefix(id) })) {
      out.push({ user: e.key[2] as string, name: e.value });
    }
    return out;
  }

  async isMember(id: number, user: string): Promise<boolean> {
    return (await this.#members.get(id, () => this.#readMembers(id))).some((m) => m.user === user);
  }

  async addMember(id: number, member: NamedUser, max: number): Promise<AddMemberResult> {
    const key = memberKey(id, member.user);
    // Every join and leave rewrites the group record, so concurrent ones retry instead of both
    // passing the size check.
    while (true) {
      const [group, existing] = await this.kv.getMany<[GroupRecord, string]>([groupKey(id), key]);
      if (!group.value) return "no_group";
      if (existing.versionstamp !== null) return "already_member";
      if (group.value.size >= max) return "full";
      const result = await this.kv.atomic()
        .check(group)
        .check(existing)
        .set(groupKey(id), { ...group.value, size: group.value.size + 1 })
        .set(key, member.name)
        .set(memberOfKey(member.user, id), true)
        .commit();
      this.#forget(id, [member.user]);
      if (result.ok) return "added";
    }
  }

  async removeMember(id: number, user: string): Promise<NamedUser[]> {
    while (true) {
      const [group, existing] = await this.kv.getMany<[GroupRecord, string]>([
        groupKey(id),
        memberKey(id, user),
      ]);
      if (!group.value || existing.versionstamp === null) return await this.members(id);
      const op = this.kv.atomic()
        .check(group)
        .check(existing)
        .delete(memberKey(id, user))
        .delete(memberOfKey(user, id));
      // The last member out takes the group with them.
      if (group.value.size <= 1) op.delete(groupKey(id));
      else op.set(groupKey(id), { ...group.value, size: group.value.size - 1 });
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
      for await (const e of this.kv.list({ prefix: memberOfPrefix(user) })) {
        ids.push(e.key[2] as number);
      }
      return ids.length > 0 ? ids : NO_GROUPS; // most users: one shared empty list
    });
  }
}
