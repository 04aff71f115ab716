/**
 * Group invitations waiting for the invitee's answer, in Deno KV:
 *   ["g_invite", invitee, group] → StoredInvitation
 * An invitation is not a membership: it does not count against the invitee's groups, and the
 * group's messages do not reach the invitee until they join.
 */

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

export class KvInvitationStore implements InvitationStore {
  constructor(private readonly kv: Deno.Kv) {}

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
      if ((await op.commit()).ok) invited.push(...fresh);
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
    await this.kv.delete(key);
    return true;
  }

  list(user: string): Promise<Invitation[]> {
    return this.#read(user);
  }

  async #read(user: string): Promise<Invitation[]> {
    const out: Invitation[] = [];
    for await (
      const e of this.kv.list<StoredInvitation>({ prefix: groupInvitationsPrefix(user) })
    ) {
      out.push(toInvitation(e.key[2] as number, e.value));
    }
    return out;
  }

  async removeFrom(user: string, from: string): Promise<void> {
    for (const inv of await this.#read(user)) {
      if (inv.from.user === from) await this.kv.delete(groupInvitationKey(user, inv.group));
    }
  }

  async clear(user: string): Promise<void> {
    for (const inv of await this.#read(user)) {
      await this.kv.delete(groupInvitationKey(user, inv.group));
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
