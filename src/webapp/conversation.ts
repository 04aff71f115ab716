/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * A conversation and its key, as the terminal client names them: "*world", "#ID" for a group,
 * "@name" (lower-cased) for a private conversation.
 */

import type { Target } from "../client/core.ts";

export interface Conversation {
  key: string;
  label: string;
  target: Target;
}

export const WORLD: Conversation = { key: "*world", label: "world", target: { world: true } };

export function groupConversation(id: number, name: string): Conversation {
  return { key: `#${id}`, label: `#${id} ${name}`.trim(), target: { group: id } };
}

export function userConversation(name: string): Conversation {
  return { key: `@${name.toLowerCase()}`, label: `@${name}`, target: { user: name } };
}

/** The conversation a received message belongs to. */
export function conversationOf(
  body: { world?: unknown; group_id?: unknown; group_name?: unknown; source_username?: unknown },
  groups: Map<number, string>,
): Conversation {
  if (body.world === true) return WORLD;
  if (typeof body.group_id === "number") {
    const name = typeof body.group_name === "string"
      ? body.group_name
      : groups.get(body.group_id) ?? "";
    return groupConversation(body.group_id, name);
  }
  if (typeof body.source_username !== "string") {
    throw new TypeError("A message with neither a group, the world nor a sender");
  }
  return userConversation(body.source_username);
}
