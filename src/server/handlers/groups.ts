/** CREATE_G, INVITE, QUERY_MEMBER, LEAVE_G and LIST_GROUPS. Only members may act on a group. */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { usernameKey } from "../../protocol/names.ts";
import type { GroupRecord, NamedUser } from "../../store/types.ts";
import { type Handler, me, type ServerContext } from "../context.ts";
import { findUser } from "./friends.ts";

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

function names(members: NamedUser[]): string[] {
  return members.map((m) => m.name).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
}

export const createGroup: Handler<RequestBodyOf<typeof MsgType.CREATE_G>> = async (
  ctx,
  session,
  [raw, invited],
) => {
  const self = me(session);
  const name = checkGroupName(ctx, raw);
  const wanted = [...new Map(invited.map((n) => [usernameKey(n), n])).values()]
    .filter((n) => usernameKey(n) !== self.user);
  const max = ctx.config.limits.maxGroupMembers;
  if (wanted.length + 1 > max) {
    throw new ParleyError(ErrorCode.GROUP_FULL, `Groups have at most ${max} members`);
  }
  const members: NamedUser[] = [{ user: self.user, name: self.name }];
  for (const n of wanted) members.push(await findUser(ctx, n));
  for (const m of members) await checkRoom(ctx, m);
  const group = await ctx.store.groups.create(name, self.user, members);
  const memberNames = names(members);
  ctx.log.info("group.created", { group: group.id, by: self.user, members: members.length });
  return {
    type: MsgType.OK,
    body: { group_id: group.id, group_name: group.name, group_members: memberNames },
    after: () => {
      for (const m of members) {
        if (m.user === self.user) continue;
        ctx.hub.sessionOf(m.user)?.push(MsgType.ADD_TO_G, {
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
      ctx.hub.sessionOf(invitee.user)?.push(MsgType.ADD_TO_G, { source_name: self.name, ...body });
      for (const m of before) {
        if (m.user === self.user) continue;
        ctx.hub.sessionOf(m.user)?.push(MsgType.NEW_MEMBER, {
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
  const group = await memberGroup(ctx, id, me(session).user);
  const members = await ctx.store.groups.members(id);
  members.sort((a, b) => a.user.localeCompare(b.user));
  return {
    type: MsgType.G_MEMBER,
    body: {
      group_id: id,
      group_name: group.name,
      group_members: members.map((m) => ({
        username: m.name,
        online: ctx.hub.sessionOf(m.user) !== undefined,
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
        ctx.hub.sessionOf(m.user)?.push(MsgType.MEMBER_LEFT, {
          group_id: id,
          group_name: group.name,
          username: self.name,
        });
      }
    },
  };
};

export const listGroups: Handler<unknown> = async (ctx, session) => {
  const groups = await ctx.store.groups.groupsOf(me(session).user);
  return {
    type: MsgType.GROUP_LIST,
    body: { groups: groups.map((g) => ({ group_id: g.id, group_name: g.name })) },
  };
};
