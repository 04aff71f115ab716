/** Friends, friend requests, blocks, group invitations and groups of the memory store. */

import type { Clock } from "../../clock/clock.ts";
import type {
  AddMemberResult,
  BlockStore,
  FriendStore,
  GroupRecord,
  GroupStore,
  Invitation,
  InvitationStore,
  NamedUser,
} from "../types.ts";

/** user → (other user → other's display name). */
type Links = Map<string, Map<string, string>>;

export interface SocialData {
  friends: Links;
  /** to → (from → from's name): requests waiting for `to`. */
  incoming: Links;
  /** from → (to → to's name). */
  outgoing: Links;
  /** blocker → (blocked → blocked's name). */
  blocks: Links;
  /** invitee → (group id → invitation). */
  invitations: Map<string, Map<number, Invitation>>;
  groups: Map<number, GroupRecord>;
  /** group id → (member → member's name). */
  members: Map<number, Map<string, string>>;
  lastGroup: number;
}

export function newSocialData(): SocialData {
  return {
    friends: new Map(),
    incoming: new Map(),
    outgoing: new Map(),
    blocks: new Map(),
    invitations: new Map(),
    groups: new Map(),
    members: new Map(),
    lastGroup: 0,
  };
}

function linksOf<K, V>(all: Map<string, Map<K, V>>, user: string): Map<K, V> {
  let links = all.get(user);
  if (!links) all.set(user, links = new Map());
  return links;
}

/** Named users in identity order, as the KV store lists them: a copy the caller may change. */
function named(links: Map<string, string> | undefined): NamedUser[] {
  return [...links ?? []].map(([user, name]) => ({ user, name }))
    .sort((a, b) => a.user < b.user ? -1 : a.user > b.user ? 1 : 0);
}

const done = <T>(value: T) => Promise.resolve(value);

export class MemoryFriends implements FriendStore {
  constructor(private readonly data: SocialData) {}

  add(a: NamedUser, b: NamedUser): Promise<boolean> {
    if (linksOf(this.data.friends, a.user).has(b.user)) return done(false);
    linksOf(this.data.friends, a.user).set(b.user, b.name);
    linksOf(this.data.friends, b.user).set(a.user, a.name);
    return done(true);
  }

  remove(a: string, b: string): Promise<boolean> {
    const had = linksOf(this.data.friends, a).delete(b);
    linksOf(this.data.friends, b).delete(a);
    return done(had);
  }

  list(user: string): Promise<NamedUser[]> {
    return done(named(this.data.friends.get(user)));
  }

  count(user: string): Promise<number> {
    return done(this.data.friends.get(user)?.size ?? 0);
  }

  request(from: NamedUser, to: NamedUser, max: number): Promise<"requested" | "waiting" | "full"> {
    if (from.user === to.user) throw new Error("A user cannot ask themself to be friends");
    const theirs = linksOf(this.data.incoming, to.user);
    const mine = linksOf(this.data.outgoing, from.user);
    if (theirs.has(from.user)) return done("waiting");
    if (theirs.size >= max || mine.size >= max) return done("full");
    theirs.set(from.user, from.name);
    mine.set(to.user, to.name);
    return done("requested");
  }

  dropRequest(from: string, to: string): Promise<boolean> {
    const had = linksOf(this.data.incoming, to).delete(from);
    linksOf(this.data.outgoing, from).delete(to);
    return done(had);
  }

  hasRequest(from: string, to: string): Promise<boolean> {
    return done(this.data.incoming.get(to)?.has(from) ?? false);
  }

  acceptRequest(from: NamedUser, to: NamedUser): Promise<boolean> {
    if (from.user === to.user) throw new Error("A user cannot be their own friend");
    if (!this.data.incoming.get(to.user)?.has(from.user)) return done(false);
    if (this.data.friends.get(from.user)?.has(to.user)) return done(false);
    // A request the other way (both asked at once) is answered by the friendship too.
    void this.dropRequest(from.user, to.user);
    void this.dropRequest(to.user, from.user);
    return this.add(from, to);
  }

  requests(user: string): Promise<{ incoming: NamedUser[]; outgoing: NamedUser[] }> {
    return done({
      incoming: named(this.data.incoming.get(user)),
      outgoing: named(this.data.outgoing.get(user)),
    });
  }

  clearRequests(user: string): Promise<void> {
    for (const from of [...this.data.incoming.get(user)?.keys() ?? []]) {
      void this.dropRequest(from, user);
    }
    for (const to of [...this.data.outgoing.get(user)?.keys() ?? []]) {
      void this.dropRequest(user, to);
    }
    return done(undefined);
  }
}

export class MemoryBlocks implements BlockStore {
  constructor(private readonly data: SocialData) {}

  add(blocker: NamedUser, blocked: NamedUser, max: number): Promise<"added" | "already" | "full"> {
    const mine = linksOf(this.data.blocks, blocker.user);
    if (mine.has(blocked.user)) return done("already");
    if (mine.size >= max) return done("full");
    mine.set(blocked.user, blocked.name);
    return done("added");
  }

  remove(blocker: string, blocked: string): Promise<boolean> {
    return done(linksOf(this.data.blocks, blocker).delete(blocked));
  }

  list(user: string): Promise<NamedUser[]> {
    return done(named(this.data.blocks.get(user)));
  }

  blocked(user: string, other: string): Promise<boolean> {
    return done(this.data.blocks.get(user)?.has(other) ?? false);
  }

  either(user: string): ReadonlySet<string> {
    const out = new Set(this.data.blocks.get(user)?.keys());
    for (const [blocker, blocked] of this.data.blocks) if (blocked.has(user)) out.add(blocker);
    return out;
  }

  clear(user: string): Promise<void> {
    this.data.blocks.delete(user);
    for (const blocked of this.data.blocks.values()) blocked.delete(user);
    return done(undefined);
  }
}

export class MemoryInvitations implements InvitationStore {
  constructor(private readonly data: SocialData, private readonly clock: Clock) {}

  add(
    invitees: NamedUser[],
    invitation: Omit<Invitation, "time">,
    limits: { perUser: number; fromOne: number },
  ): Promise<{ invited: NamedUser[]; waiting: NamedUser[]; full: NamedUser[] }> {
    const out = { invited: [] as NamedUser[], waiting: [] as NamedUser[], full: [] as NamedUser[] };
    for (const u of invitees) {
      const held = linksOf(this.data.invitations, u.user);
      const fromThem = [...held.values()].filter((i) => i.from.user === invitation.from.user);
      if (held.has(invitation.group)) out.waiting.push(u);
      else if (held.size >= limits.perUser || fromThem.length >= limits.fromOne) out.full.push(u);
      else {
        held.set(invitation.group, {
          ...invitation,
          from: { ...invitation.from },
          time: new Date(this.clock.wall()),
        });
        out.invited.push(u);
      }
    }
    return done(out);
  }

  get(user: string, group: number): Promise<Invitation | null> {
    const i = this.data.invitations.get(user)?.get(group);
    return done(i ? { ...i } : null);
  }

  remove(user: string, group: number): Promise<boolean> {
    return done(this.data.invitations.get(user)?.delete(group) ?? false);
  }

  list(user: string): Promise<Invitation[]> {
    const all = [...this.data.invitations.get(user)?.values() ?? []];
    return done(all.sort((a, b) => a.group - b.group).map((i) => ({ ...i })));
  }

  removeFrom(user: string, from: string): Promise<void> {
    const held = this.data.invitations.get(user);
    for (const [group, i] of held ?? []) if (i.from.user === from) held!.delete(group);
    return done(undefined);
  }

  clear(user: string): Promise<void> {
    this.data.invitations.delete(user);
    return done(undefined);
  }
}

export class MemoryGroups implements GroupStore {
  constructor(private readonly data: SocialData) {}

  create(name: string, creator: string, members: NamedUser[]): Promise<GroupRecord> {
    const id = ++this.data.lastGroup;
    const list = new Map(members.map((m) => [m.user, m.name]));
    const record = { id, name, creator, created: new Date(), size: list.size };
    this.data.groups.set(id, record);
    this.data.members.set(id, list);
    return done({ ...record });
  }

  get(id: number): Promise<GroupRecord | null> {
    const g = this.data.groups.get(id);
    return done(g ? { ...g } : null);
  }

  members(id: number): Promise<NamedUser[]> {
    return done(named(this.data.members.get(id)));
  }

  isMember(id: number, user: string): Promise<boolean> {
    return done(this.data.members.get(id)?.has(user) ?? false);
  }

  addMember(id: number, member: NamedUser, max: number): Promise<AddMemberResult> {
    const g = this.data.groups.get(id);
    const list = this.data.members.get(id);
    if (!g || !list) return done("no_group");
    if (list.has(member.user)) return done("already_member");
    if (list.size >= max) return done("full");
    list.set(member.user, member.name);
    g.size = list.size;
    return done("added");
  }

  removeMember(id: number, user: string): Promise<NamedUser[]> {
    const g = this.data.groups.get(id);
    const list = this.data.members.get(id);
    if (g && list?.delete(user)) {
      g.size = list.size;
      // The last member out takes the group with them.
      if (list.size === 0) {
        this.data.groups.delete(id);
        this.data.members.delete(id);
      }
    }
    return this.members(id);
  }

  groupsOf(user: string): Promise<GroupRecord[]> {
    const out: GroupRecord[] = [];
    for (const [id, list] of this.data.members) {
      if (list.has(user)) out.push({ ...this.data.groups.get(id)! });
    }
    return done(out);
  }

  async countOf(user: string): Promise<number> {
    return (await this.groupsOf(user)).length;
  }
}
