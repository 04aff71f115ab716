/**
 * Group invitations waiting for the invitee's answer, in Deno KV:
 *   ["g_invite", invitee, group] → StoredInvitation
 * An invitation is not a membership: it does not count against the invitee's groups, and the
 * group's messages do not reach the invitee until they join.
 *
 * Every login lists its user's invitations (for INITIALIZE), so the lists are kept in memory:
 * this process owns the store, and every change here drops the invitee's list once committed.
 */

import { ReadCache } from "./read_cache.ts";
import type { Invitation, InvitationStore, NamedUser } from "./types.ts";
import { groupInvitationKey, groupInvitationsPrefix } from "./kv_keys.ts";

interface StoredInvitation {
  groupName: string;
  fromUser: string;
  fromName: string;
  time: Date;
}

/** Invitees per commit: each takes one check, and a commit allows 100. */
const INVITEES_PER_COMMIT = 100;
/** Users whose invitations are kept in memory; past this the longest-held list goes. */
const CACHED_LISTS = 10_000;
const NONE: readonly Invitation[] = Object.freeze([]);

export class KvInvitationStore implements InvitationStore {
  readonly #lists = new ReadCache<string, readonly Invitation[]>(CACHED_LISTS);

  constructor(private readonly kv: Deno.Kv) {}

  /** Runs a write to `users`' invitations, then drops their cached lists, whether it committed or not. */
  async #changing<T>(users: readonly string[], write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      for (const user of users) this.#lists.forget(user);
    }
  }

  async add(
    invitees: NamedUser[],
    invitation: Omit<Invitation, "time">,
    limits: { perUser: number; fromOne: number },
  ): Promise<{ invited: NamedUser[]; waiting: NamedUser[]; full: NamedUser[] }> {
    const invited: NamedUser[] = [];
    const waiting: NamedUser[] = [];
    const full: NamedUser[] = [];
    const value: StoredInvitation = {
      groupName: invitation.groupName,
      fromUser: invitation.from.user,
      fromName: invitation.from.name,
      time: new Date(),
    };
    for (let i = 0; i < invitees.length; i += INVITEES_PER_COMMIT) {
      const batch = invitees.slice(i, i + INVITEES_PER_COMMIT);
      const fresh: NamedUser[] = [];
      for (const u of batch) {
        const held = await this.#read(u.user);
        if (held.some((h) => h.group === invitation.group)) waiting.push(u);
        else if (
          held.length >= limits.perUser ||
          held.filter((h) => h.from.user === invitation.from.user).length >= limits.fromOne
        ) full.push(u);
        else fresh.push(u);
      }
      if (fresh.length === 0) continue;
      const op = this.kv.atomic();
      for (const u of fresh) {
        const key = groupInvitationKey(u.user, invitation.group);
        op.check({ key, versionstamp: null }).set(key, value);
      }
      // A concurrent invitation to the same group is rare: then this batch counts as waiting.
      const result = await this.#changing(fresh.map((u) => u.user), () => op.commit());
      if (result.ok) invited.push(...fresh);
      else waiting.push(...fresh);
    }
    return { invited, waiting, full };
  }

  async get(user: string, group: number): Promise<Invitation | null> {
    const e = await this.kv.get<StoredInvitation>(groupInvitationKey(user, group));
    return e.value ? toInvitation(group, e.value) : null;
  }

  async remove(user: string, group: number): Promise<boolean> {
    const key = groupInvitationKey(user, group);
    if ((await this.kv.get(key)).versionstamp === null) return false;
    await this.#changing([user], () => this.kv.delete(key));
    return true;
  }

  async list(user: string): Promise<Invitation[]> {
    // Callers may change their copy; the invitations themselves are not changed.
    return [...await this.#read(user)];
  }

  #read(user: string): Promise<readonly Invitation[]> {
    return this.#lists.get(user, async () => {
      const out: Invitation[] = [];
      for await (
        const e of this.kv.list<StoredInvitation>({ prefix: groupInvitationsPrefix(user) })
      ) {
        out.push(toInvitation(e.key[2] as number, e.value));
      }
      return out.length > 0 ? out : NONE; // most users: one shared empty list
    });
  }

  async removeFrom(user: string, from: string): Promise<void> {
    for (const inv of await this.#read(user)) {
      if (inv.from.user === from) {
        await this.#changing([user], () => this.kv.delete(groupInvitationKey(user, inv.group)));
      }
    }
  }

  async clear(user: string): Promise<void> {
    for (const inv of await this.#read(user)) {
      await this.#changing([user], () => this.kv.delete(groupInvitationKey(user, inv.group)));
    }
  }
}

function toInvitation(group: number, v: StoredInvitation): Invitation {
  return {
    group,
    groupName: v.groupName,
    from: { user: v.fromUser, name: v.fromName },
    time: v.time,
  };
}
