/**
 * Groups in the `groups` bucket:
 *   seq → last group id given (an atomic counter: compare-and-set)
 *   group.<id> → StoredGroup      THE truth: the record and its members, so that a join or a
 *                                 leave is one compare-and-set, and the size cannot pass the cap
 *   mine.<user> → index of group ids the user is in (derived_index.ts), for groupsOf/countOf
 * The group goes (its key deleted) with its last member; ids are never given again.
 */

import { userToken } from "../../cluster/names.ts";
import type { Clock } from "../../clock/clock.ts";
import { invariant } from "../../invariant/invariant.ts";
import type { AddMemberResult, GroupRecord, GroupStore, NamedUser } from "../types.ts";
import type { GroupImage } from "../transfer.ts";
import { DerivedIndex, settledIndex } from "./derived_index.ts";
import { change, read, type RecordBucket } from "./kv_records.ts";

interface StoredGroup extends GroupRecord {
  members: NamedUser[];
}

const SEQ_KEY = "seq";
const groupKey = (id: number) => `group.${id}`;
const mineKey = (user: string) => `mine.${userToken(user)}`;

/**
 * Groups brought from another store (import.ts), with their ids, as the records to write:
 * each group with its members, each member's index of groups (settled), and the counter at
 * `lastId` (or the highest id, if above), so that new groups never take an id given before.
 */
export function importedGroups(groups: Iterable<GroupImage>, lastId: number): [string, unknown][] {
  const out: [string, unknown][] = [];
  const mine = new Map<string, Record<string, true>>();
  let seq = lastId;
  for (const { record, members } of groups) {
    invariant(members.length > 0, "a group has members until its last one leaves");
    const group: StoredGroup = {
      id: record.id,
      name: record.name,
      creator: record.creator,
      created: record.created,
      size: members.length,
      members: members.map(({ user, name }) => ({ user, name })),
    };
    out.push([groupKey(record.id), group]);
    for (const m of members) {
      let ids = mine.get(m.user);
      if (!ids) mine.set(m.user, ids = {});
      ids[String(record.id)] = true;
    }
    seq = Math.max(seq, record.id);
  }
  for (const [user, ids] of mine) out.push([mineKey(user), settledIndex(ids)]);
  if (seq > 0) out.push([SEQ_KEY, seq]);
  return out;
}

function recordOf(g: StoredGroup): GroupRecord {
  invariant(g.size === g.members.length, "a group's size is its member count");
  const { id, name, creator, created, size } = g;
  return { id, name, creator, created, size };
}

export class NatsGroupStore implements GroupStore {
  readonly #mine: DerivedIndex<true>;

  constructor(private readonly kv: RecordBucket, private readonly clock: Clock) {
    this.#mine = new DerivedIndex<true>(kv, mineKey, async (user, id) => {
      const g = await this.#read(Number(id));
      return g?.members.some((m) => m.user === user) ? true : null;
    }, clock);
  }

  async #read(id: number): Promise<StoredGroup | null> {
    return (await read<StoredGroup>(this.kv, groupKey(id))).value;
  }

  async create(name: string, creator: string, members: NamedUser[]): Promise<GroupRecord> {
    const id = await change<number, number>(this.kv, SEQ_KEY, (last) => ({
      next: (last ?? 0) + 1,
      result: (last ?? 0) + 1,
    }));
    const group: StoredGroup = {
      id,
      name,
      creator,
      created: new Date(this.clock.wall()),
      size: members.length,
      members: members.map(({ user, name }) => ({ user, name })),
    };
    const pairs = members.map((m): [string, string] => [m.user, String(id)]);
    const made = await this.#mine.changing(
      pairs,
      () =>
        change<StoredGroup, boolean>(
          this.kv,
          groupKey(id),
          (cur) => cur !== null ? { result: false } : { next: group, result: true },
        ),
    );
    invariant(made, "a fresh group id is free");
    return recordOf(group);
  }

  async get(id: number): Promise<GroupRecord | null> {
    const g = await this.#read(id);
    return g ? recordOf(g) : null;
  }

  async members(id: number): Promise<NamedUser[]> {
    return (await this.#read(id))?.members ?? [];
  }

  async isMember(id: number, user: string): Promise<boolean> {
    return (await this.#read(id))?.members.some((m) => m.user === user) ?? false;
  }

  async addMember(id: number, member: NamedUser, max: number): Promise<AddMemberResult> {
    const step = (g: StoredGroup | null) => {
      if (g === null) return { result: "no_group" as const };
      if (g.members.some((m) => m.user === member.user)) {
        return { result: "already_member" as const };
      }
      if (g.size >= max) return { result: "full" as const };
      const members = [...g.members, { user: member.user, name: member.name }];
      return { next: { ...g, members, size: members.length }, result: "added" as const };
    };
    // A first look without marks: refusals end here.
    const first = step(await this.#read(id));
    if (first.next === undefined) return first.result;
    return await this.#mine.changing(
      [[member.user, String(id)]],
      () => change<StoredGroup, AddMemberResult>(this.kv, groupKey(id), step),
    );
  }

  async removeMember(id: number, user: string): Promise<NamedUser[]> {
    const step = (g: StoredGroup | null) => {
      if (g === null) return { result: [] };
      if (!g.members.some((m) => m.user === user)) return { result: g.members };
      const members = g.members.filter((m) => m.user !== user);
      // The last member out takes the group with them.
      const next = members.length === 0 ? null : { ...g, members, size: members.length };
      return { next, result: members };
    };
    const first = step(await this.#read(id));
    if (first.next === undefined) return first.result;
    return await this.#mine.changing(
      [[user, String(id)]],
      () => change<StoredGroup, NamedUser[]>(this.kv, groupKey(id), step),
    );
  }

  async groupsOf(user: string): Promise<GroupRecord[]> {
    const ids = [...(await this.#mine.read(user)).keys()].map(Number).sort((a, b) => a - b);
    const groups = await Promise.all(ids.map((id) => this.#read(id)));
    return groups.filter((g): g is StoredGroup =>
      g !== null && g.members.some((m) => m.user === user)
    ).map(recordOf);
  }

  async countOf(user: string): Promise<number> {
    return (await this.#mine.read(user)).size;
  }
}
