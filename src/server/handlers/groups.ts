/**
 * CREATE_G, INVITE, QUERY_MEMBER, LEAVE_G, LIST_GROUPS, JOIN_G and DECLINE_G. Only members may act
 * on a group. Friends are added at once; anyone else is invited and joins only by accepting
 * (JOIN_G), so a stranger cannot fill a user's groups (`groups.inviteNeedsConsent`).
 */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { usernameKey } from "../../protocol/names.ts";
import type { GroupRecord, Invitation, NamedUser } from "../../store/types.ts";
import { type Handler, me, type ServerContext } from "../context.ts";
import { findUser, isFriend, refuseBlocked } from "./friends.ts";

/**
 * Invitations waiting from one inviter to one user: a few groups at once is ordinary, and a
 * stranger cannot take up much of the invitee's `limits.maxInvitations`.
 */
const MAX_INVITATIONS_FROM_ONE = 5;

function checkGroupName(ctx: ServerContext, raw: string): string {
  const name = raw.trim();
  const max = ctx.config.limits.maxGroupNameLength;
  if (name.length === 0 || name.length > max) {
    throw new ParleyError(ErrorCode.BAD_REQUEST, `Group names are 1 to ${max} characters`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new ParleyError(ErrorCode.BAD_REQUEST, "Group names cannot contain control characters");
  }
  return name;
}

/** The group, if `user` is in it (ids are sequential, so telling "no such group" apart hides nothing). */
async function memberGroup(ctx: ServerContext, id: number, user: string): Promise<GroupRecord> {
  const [group, member] = await Promise.all([
    ctx.store.groups.get(id),
    ctx.store.groups.isMember(id, user),
  ]);
  if (!group) throw new ParleyError(ErrorCode.NO_SUCH_GROUP, `There is no group ${id}`);
  if (!member) throw new ParleyError(ErrorCode.NOT_A_MEMBER, `You are not a member of group ${id}`);
  return group;
}

/** Refuses when `member` is already in as many groups as a user may be. */
async function checkRoom(ctx: ServerContext, member: NamedUser): Promise<void> {
  const max = ctx.config.limits.maxGroupsPerUser;
  if (await ctx.store.groups.countOf(member.user) >= max) {
    throw new ParleyError(ErrorCode.LIMIT_REACHED, `${member.name} is already in ${max} groups`);
  }
}

/** Whether adding `other` to a group needs their consent: they are not `self`'s friend. */
async function needsConsent(ctx: ServerContext, self: NamedUser, other: NamedUser) {
  return ctx.config.groups.inviteNeedsConsent && !await isFriend(ctx, self.user, other.user);
}

/**
 * The invitations waiting for `user`; those to groups that have ended since (their last member
 * left) go, so that they neither show nor take up the user's room for invitations.
 */
export async function liveInvitations(ctx: ServerContext, user: string): Promise<Invitation[]> {
  const live: Invitation[] = [];
  for (const invitation of await ctx.store.invitations.list(user)) {
    if (await ctx.store.groups.get(invitation.group)) live.push(invitation);
    else await ctx.store.invitations.remove(user, invitation.group);
  }
  return live;
}

/** Refuses when `invitee` has as many invitations waiting as allowed, in all or from `self`. */
async function checkInvitationRoom(ctx: ServerContext, self: NamedUser, invitee: NamedUser) {
  const waiting = await liveInvitations(ctx, invitee.user);
  const max = ctx.config.limits.maxInvitations;
  if (
    waiting.length >= max ||
    waiting.filter((w) => w.from.user === self.user).length >= MAX_INVITATIONS_FROM_ONE
  ) {
    throw new ParleyError(
      ErrorCode.LIMIT_REACHED,
      `${invitee.name} has too many group invitations waiting`,
    );
  }
}

/** Records invitations; returns those newly invited (to be told), not those invited before. */
async function inviteStrangers(
  ctx: ServerContext,
  self: NamedUser,
  group: GroupRecord,
  strangers: NamedUser[],
): Promise<{ invited: NamedUser[] }> {
  if (strangers.length === 0) return { invited: [] };
  const { invited } = await ctx.store.invitations.add(
    strangers,
    { group: group.id, groupName: group.name, from: { user: self.user, name: self.name } },
    { perUser: ctx.config.limits.maxInvitations, fromOne: MAX_INVITATIONS_FROM_ONE },
  );
  return { invited };
}

function pushInvitations(
  ctx: ServerContext,
  self: NamedUser,
  body: { group_id: number; group_name: string; group_members: string[] },
  invited: NamedUser[],
): void {
  for (const u of invited) {
    ctx.hub.push(u.user, MsgType.G_INVITATION, { source_name: self.name, ...body });
  }
}

function names(members: NamedUser[]): string[] {
  return members.map((m) => m.name).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
}

export const createGroup: Handler<RequestBodyOf<typeof MsgType.CREATE_G>> = async (
  ctx,
  session,
  [raw, listed],
) => {
  const self = me(session);
  const name = checkGroupName(ctx, raw);
  const wanted = [...new Map(listed.map((n) => [usernameKey(n), n])).values()]
    .filter((n) => usernameKey(n) !== self.user);
  const max = ctx.config.limits.maxGroupMembers;
  if (wanted.length + 1 > max) {
    throw new ParleyError(ErrorCode.GROUP_FULL, `Groups have at most ${max} members`);
  }
  const members: NamedUser[] = [{ user: self.user, name: self.name }];
  const strangers: NamedUser[] = [];
  for (const n of wanted) {
    const u = await findUser(ctx, n);
    await refuseBlocked(ctx, self, u);
    if (await needsConsent(ctx, self, u)) strangers.push(u);
    else members.push(u);
  }
  for (const m of members) await checkRoom(ctx, m);
  for (const u of strangers) await checkInvitationRoom(ctx, self, u);
  const group = await ctx.store.groups.create(name, self.user, members);
  const memberNames = names(members);
  const { invited } = await inviteStrangers(ctx, self, group, strangers);
  ctx.log.info("group.created", {
    group: group.id,
    by: self.user,
    members: members.length,
    invited: invited.length,
  });
  const body = { group_id: group.id, group_name: group.name, group_members: memberNames };
  return {
    type: MsgType.OK,
    body: { ...body, invited: names(invited) },
    after: () => {
      pushInvitations(ctx, self, body, invited);
      for (const m of members) {
        if (m.user === self.user) continue;
        ctx.hub.push(m.user, MsgType.ADD_TO_G, {
          source_name: self.name,
          group_id: group.id,
          group_name: group.name,
          group_members: memberNames,
        });
      }
    },
  };
};

export const invite: Handler<RequestBodyOf<typeof MsgType.INVITE>> = async (
  ctx,
  session,
  [id, name],
) => {
  const self = me(session);
  const group = await memberGroup(ctx, id, self.user);
  const invitee = await findUser(ctx, name);
  const before = await ctx.store.groups.members(id);
  const max = ctx.config.limits.maxGroupMembers;
  if (before.some((m) => m.user === invitee.user)) {
    throw new ParleyError(
      ErrorCode.ALREADY_MEMBER,
      `${invitee.name} is already in "${group.name}"`,
    );
  }
  if (before.length >= max) {
    throw new ParleyError(ErrorCode.GROUP_FULL, `Groups have at most ${max} members`);
  }
  await refuseBlocked(ctx, self, invitee);
  if (await needsConsent(ctx, self, invitee)) {
    await checkInvitationRoom(ctx, self, invitee);
    const { invited } = await inviteStrangers(ctx, self, group, [invitee]);
    const body = { group_id: id, group_name: group.name, group_members: names(before) };
    return {
      type: MsgType.STATUS_INVITE,
      body: { success: true, ...body, pending: true },
      after: () => pushInvitations(ctx, self, body, invited),
    };
  }
  await checkRoom(ctx, invitee);
  const added = await ctx.store.groups.addMember(id, invitee, max);
  if (added === "already_member") {
    throw new ParleyError(
      ErrorCode.ALREADY_MEMBER,
      `${invitee.name} is already in "${group.name}"`,
    );
  }
  if (added === "full") {
    throw new ParleyError(ErrorCode.GROUP_FULL, `Groups have at most ${max} members`);
  }
  if (added === "no_group") {
    throw new ParleyError(ErrorCode.NO_SUCH_GROUP, `There is no group ${id}`);
  }
  const members = [...before, invitee];
  const memberNames = names(members);
  const body = { group_id: id, group_name: group.name, group_members: memberNames };
  return {
    type: MsgType.STATUS_INVITE,
    body: { success: true, ...body },
    after: () => {
      ctx.hub.push(invitee.user, MsgType.ADD_TO_G, { source_name: self.name, ...body });
      for (const m of before) {
        if (m.user === self.user) continue;
        ctx.hub.push(m.user, MsgType.NEW_MEMBER, {
          source_name: self.name,
          username: invitee.name,
          ...body,
        });
      }
    },
  };
};

export const queryMembers: Handler<RequestBodyOf<typeof MsgType.QUERY_MEMBER>> = async (
  ctx,
  session,
  id,
) => {
  const self = me(session);
  const group = await memberGroup(ctx, id, self.user);
  const members = await ctx.store.groups.members(id);
  members.sort((a, b) => a.user.localeCompare(b.user));
  const hidden = await ctx.store.blocks.either(self.user);
  return {
    type: MsgType.G_MEMBER,
    body: {
      group_id: id,
      group_name: group.name,
      group_members: members.map((m) => ({
        username: m.name,
        online: !hidden.has(m.user) && ctx.hub.isOnline(m.user),
      })),
    },
  };
};

export const leaveGroup: Handler<RequestBodyOf<typeof MsgType.LEAVE_G>> = async (
  ctx,
  session,
  id,
) => {
  const self = me(session);
  const group = await memberGroup(ctx, id, self.user);
  const remaining = await ctx.store.groups.removeMember(id, self.user);
  return {
    type: MsgType.OK,
    body: { group_id: id, group_name: group.name },
    after: () => {
      for (const m of remaining) {
        ctx.hub.push(m.user, MsgType.MEMBER_LEFT, {
          group_id: id,
          group_name: group.name,
          username: self.name,
        });
      }
    },
  };
};

export const listGroups: Handler<unknown> = async (ctx, session) => {
  const user = me(session).user;
  const [groups, invitations] = await Promise.all([
    ctx.store.groups.groupsOf(user),
    liveInvitations(ctx, user),
  ]);
  return {
    type: MsgType.GROUP_LIST,
    body: {
      groups: groups.map((g) => ({ group_id: g.id, group_name: g.name })),
      invitations: invitationList(invitations),
    },
  };
};

/** Invitations as GROUP_LIST and INITIALIZE carry them, in group id order. */
export function invitationList(invitations: Invitation[]) {
  return invitations.map((i) => ({
    group_id: i.group,
    group_name: i.groupName,
    source_name: i.from.name,
  }));
}

/** Accepts an invitation: the invitee becomes a member, and counts the group as theirs. */
export const joinGroup: Handler<RequestBodyOf<typeof MsgType.JOIN_G>> = async (
  ctx,
  session,
  id,
) => {
  const self = me(session);
  const invitation = await ctx.store.invitations.get(self.user, id);
  if (!invitation) {
    throw new ParleyError(ErrorCode.NO_SUCH_INVITATION, `You have no invitation to group ${id}`);
  }
  const group = await ctx.store.groups.get(id);
  if (!group) {
    await ctx.store.invitations.remove(self.user, id);
    throw new ParleyError(ErrorCode.NO_SUCH_GROUP, `There is no group ${id}`);
  }
  await checkRoom(ctx, self);
  const max = ctx.config.limits.maxGroupMembers;
  const added = await ctx.store.groups.addMember(id, self, max);
  if (added === "full") {
    throw new ParleyError(ErrorCode.GROUP_FULL, `Groups have at most ${max} members`);
  }
  // Joined (or already a member, or the group just went): the invitation has been used.
  await ctx.store.invitations.remove(self.user, id);
  if (added === "no_group") {
    throw new ParleyError(ErrorCode.NO_SUCH_GROUP, `There is no group ${id}`);
  }
  if (added === "already_member") {
    throw new ParleyError(ErrorCode.ALREADY_MEMBER, `${self.name} is already in "${group.name}"`);
  }
  const members = await ctx.store.groups.members(id);
  const body = { group_id: id, group_name: group.name, group_members: names(members) };
  return {
    type: MsgType.OK,
    body,
    after: async () => {
      const hidden = await ctx.store.blocks.either(self.user);
      for (const m of members) {
        if (m.user === self.user || hidden.has(m.user)) continue;
        ctx.hub.push(m.user, MsgType.NEW_MEMBER, {
          source_name: invitation.from.name,
          username: self.name,
          ...body,
        });
      }
    },
  };
};

export const declineGroup: Handler<RequestBodyOf<typeof MsgType.DECLINE_G>> = async (
  ctx,
  session,
  id,
) => {
  const self = me(session);
  const invitation = await ctx.store.invitations.get(self.user, id);
  if (!invitation || !await ctx.store.invitations.remove(self.user, id)) {
    throw new ParleyError(ErrorCode.NO_SUCH_INVITATION, `You have no invitation to group ${id}`);
  }
  return { type: MsgType.OK, body: { group_id: id, group_name: invitation.groupName } };
};
