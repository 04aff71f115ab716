/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The side panel: recent conversations with their unread counts, friends with presence, groups,
 * and what waits for the user's answer (friend requests, group invitations).
 */

import type { Invitation } from "../client/core.ts";
import { button, byId, el } from "./dom.ts";
import type { ConversationInfo } from "./history_store.ts";

export interface SidebarActions {
  /** Opens a conversation: "*world", "@name" or "#id". */
  open(key: string): void;
  addFriend(name: string): void;
  removeFriend(name: string): void;
  createGroup(name: string): void;
  joinGroup(id: number): void;
  declineGroup(id: number): void;
  block(name: string): void;
  unblock(name: string): void;
}

export const WORLD_KEY = "*world";

export class Sidebar {
  readonly #recent = byId<HTMLUListElement>("recent-list");
  readonly #friends = byId<HTMLUListElement>("friend-list");
  readonly #groups = byId<HTMLUListElement>("group-list");
  readonly #waiting = byId<HTMLUListElement>("request-list");
  readonly #blocked = byId<HTMLUListElement>("blocked-list");

  constructor(private readonly actions: SidebarActions) {
    const form = (id: string, input: string, use: (value: string) => void) => {
      const field = byId<HTMLInputElement>(input);
      byId<HTMLFormElement>(id).addEventListener("submit", (e) => {
        e.preventDefault();
        const value = field.value.trim();
        if (!value) return;
        field.value = "";
        use(value);
      });
    };
    form("add-friend-form", "add-friend-name", (name) => actions.addFriend(name));
    form("create-group-form", "create-group-name", (name) => actions.createGroup(name));
  }

  #opener(key: string, label: string, current: string | null, unread = 0): HTMLButtonElement {
    const b = button(label, () => this.actions.open(key), {
      class: key === current ? "open current" : "open",
      "data-key": key,
    });
    if (unread > 0) {
      b.append(" ", el("span", { class: "badge", "aria-label": `${unread} unread` }, `${unread}`));
    }
    return b;
  }

  recent(convs: ConversationInfo[], current: string | null): void {
    const items = convs.map((c) => el("li", {}, this.#opener(c.key, c.label, current, c.unread)));
    if (!convs.some((c) => c.key === WORLD_KEY)) {
      items.push(el("li", {}, this.#opener(WORLD_KEY, "world", current)));
    }
    this.#recent.replaceChildren(...items);
  }

  /** `connected` false: our connection is down, so nobody's presence is known. */
  friends(friends: Map<string, boolean>, current: string | null, connected: boolean): void {
    const names = [...friends.keys()].sort((a, b) => a.localeCompare(b));
    this.#friends.replaceChildren(...names.map((name) => {
      const online = friends.get(name) === true;
      return el(
        "li",
        { "data-friend": name, "data-online": connected ? String(online) : "unknown" },
        el("span", {
          class: !connected ? "presence unknown" : online ? "presence online" : "presence",
          title: !connected ? "unknown while disconnected" : online ? "online" : "offline",
        }),
        this.#opener(`@${name.toLowerCase()}`, name, current),
        button("×", () => this.actions.removeFriend(name), {
          title: `Remove ${name} from your friends`,
          "aria-label": `Remove ${name}`,
        }),
      );
    }));
  }

  groups(groups: Map<number, string>, current: string | null): void {
    this.#groups.replaceChildren(
      ...[...groups].map(([id, name]) =>
        el("li", {}, this.#opener(`#${id}`, `#${id} ${name}`, current))
      ),
    );
  }

  waiting(requests: string[], invitations: Invitation[]): void {
    this.#waiting.replaceChildren(
      ...requests.map((name) =>
        el(
          "li",
          { "data-request": name },
          `${name} asks to be your friend `,
          button("Accept", () => this.actions.addFriend(name)),
          button("Decline", () => this.actions.removeFriend(name)),
          button("Block", () => this.actions.block(name)),
        )
      ),
      ...invitations.map((i) =>
        el(
          "li",
          { "data-invitation": String(i.group_id) },
          `${i.source_name} invites you to #${i.group_id} ${i.group_name} `,
          button("Join", () => this.actions.joinGroup(i.group_id)),
          button("Decline", () => this.actions.declineGroup(i.group_id)),
        )
      ),
    );
    if (requests.length + invitations.length === 0) {
      this.#waiting.append(el("li", { class: "empty" }, "Nothing"));
    }
  }

  /** Users this account blocks: no contact either way until unblocked. */
  blocked(names: string[]): void {
    this.#blocked.replaceChildren(
      ...names.map((name) =>
        el(
          "li",
          { "data-blocked": name },
          `${name} `,
          button("Unblock", () => this.actions.unblock(name)),
        )
      ),
    );
    if (names.length === 0) this.#blocked.append(el("li", { class: "empty" }, "Nobody"));
  }
}
