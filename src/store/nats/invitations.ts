/**
 * Group invitations in the `social` bucket, all of one invitee's in one key:
 *   ginv.<invitee> → { [group id]: StoredInvitation }
 * A user's invitations are few (capped per user), every login lists them, and the caps are
 * checked in the same compare-and-set that adds one, so they hold exactly across nodes.
 */

import { userToken } from "../../cluster/names.ts";
import type { Clock } from "../../clock/clock.ts";
import type { Invitation, InvitationStore, NamedUser } from "../types.ts";
import { change, read, type RecordBucket } from "./kv_records.ts";

interface StoredInvitation {
  groupName: string;
  fromUser: string;
  fromName: string;
  time: Date;
}

type Held = Record<string, StoredInvitation>;

const invitationsKey = (user: string) => `ginv.${userToken(user)}`;

function toInvitation(group: number, v: StoredInvitation): Invitation {
  return {
    group,
    groupName: v.groupName,
    from: { user: v.fromUser, name: v.fromName },
    time: v.time,
  };
}

/** `held` without the entries `drop` picks; null when none is left. */
function without(held: Held, drop: (group: number, v: StoredInvitation) => boolean): Held | null {
  const left = Object.entries(held).filter(([g, v]) => !drop(Number(g), v));
  return left.length > 0 ? Object.fromEntries(left) : null;
}

/** One invitee's invitations brought from another store (import.ts): the key and value. */
export function importedInvitations(user: string, invitations: Invitation[]): [string, Held] {
  const held: Held = {};
  for (const i of invitations) {
    held[String(i.group)] = {
      groupName: i.groupName,
      fromUser: i.from.user,
      fromName: i.from.name,
      time: i.time,
    };
  }
  return [invitationsKey(user), held];
}

export class NatsInvitationStore implements InvitationStore {
  constructor(private readonly kv: RecordBucket, private readonly clock: Clock) {}

  async add(
    invitees: NamedUser[],
    invitation: Omit<Invitation, "time">,
    limits: { perUser: number; fromOne: number },
  ): Promise<{ invited: NamedUser[]; waiting: NamedUser[]; full: NamedUser[] }> {
    const value: StoredInvitation = {
      groupName: invitation.groupName,
      fromUser: invitation.from.user,
      fromName: invitation.from.name,
      time: new Date(this.clock.wall()),
    };
    const group = String(invitation.group);
    const outcomes = await Promise.all(
      invitees.map((u) =>
        change<Held, "invited" | "waiting" | "full">(this.kv, invitationsKey(u.user), (cur) => {
          const held = cur ?? {};
          if (group in held) return { result: "waiting" };
          const all = Object.values(held);
          const fromOne = all.filter((h) => h.fromUser === invitation.from.user).length;
          if (all.length >= limits.perUser || fromOne >= limits.fromOne) return { result: "full" };
          return { next: { ...held, [group]: value }, result: "invited" };
        })
      ),
    );
    const pick = (o: string) => invitees.filter((_, i) => outcomes[i] === o);
    return { invited: pick("invited"), waiting: pick("waiting"), full: pick("full") };
  }

  async get(user: string, group: number): Promise<Invitation | null> {
    const v = (await read<Held>(this.kv, invitationsKey(user))).value?.[String(group)];
    return v ? toInvitation(group, v) : null;
  }

  remove(user: string, group: number): Promise<boolean> {
    return change<Held, boolean>(this.kv, invitationsKey(user), (cur) => {
      if (!cur || !(String(group) in cur)) return { result: false };
      return { next: without(cur, (g) => g === group), result: true };
    });
  }

  async list(user: string): Promise<Invitation[]> {
    const held = (await read<Held>(this.kv, invitationsKey(user))).value ?? {};
    return Object.entries(held).map(([g, v]) => toInvitation(Number(g), v))
      .sort((a, b) => a.group - b.group);
  }

  async removeFrom(user: string, from: string): Promise<void> {
    await change<Held, void>(this.kv, invitationsKey(user), (cur) => {
      if (!cur || !Object.values(cur).some((v) => v.fromUser === from)) {
        return { result: undefined };
      }
      return { next: without(cur, (_, v) => v.fromUser === from), result: undefined };
    });
  }

  async clear(user: string): Promise<void> {
    await change<Held, void>(this.kv, invitationsKey(user), () => ({
      next: null,
      result: undefined,
    }));
  }
}
