/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The chat in the page, as the terminal's ChatSession does it: every pushed message is stored
 * in IndexedDB first and acknowledged after (so nothing acknowledged can be lost, and a
 * redelivery is recognised by its stored key); messages are sent in the order typed, across
 * reconnections, each with one id for all its attempts.
 */

import type { Invitation, ParleyClient } from "../client/core.ts";
import type { Link } from "../client/link.ts";
import type { SentReceipt } from "../client/core.ts";
import {
  DEFAULT_LIMITS,
  fileProblem,
  imageProblem,
  SEND_OVERHEAD_BYTES,
  type ServerLimits,
  textProblem,
} from "../client/outgoing.ts";
import type { Message } from "../protocol/message_codec.ts";
import { MsgType } from "../protocol/messages.ts";
import { Composer } from "./composer.ts";
import {
  type Conversation,
  conversationOf,
  groupConversation,
  userConversation,
  WORLD,
} from "./conversation.ts";
import { installSwitcher, prompt } from "./dialogs.ts";
import { byId, formatSize } from "./dom.ts";
import type { HistoryEntry, HistoryStore } from "./history_store.ts";
import { MessageView } from "./message_view.ts";
import type { Notifications } from "./notifications.ts";
import { Sidebar } from "./sidebar.ts";
import { fileSource, type Offer, showOffer, TransferLine } from "./transfers.ts";

// deno-lint-ignore no-explicit-any
type Body = Record<string, any>;

/** How many entries a conversation shows when opened. */
const SHOWN = 200;

export class WebChat {
  #current: Conversation = WORLD;
  readonly #groups = new Map<number, string>();
  /** Friends by registered name, online or not. */
  readonly #friends = new Map<string, boolean>();
  #requests: string[] = [];
  #invitations: Invitation[] = [];
  #blocked: string[] = [];
  #limits: ServerLimits = { ...DEFAULT_LIMITS };
  /** Messages still to come from the login backlog, and where they went. */
  #backlog = 0;
  readonly #arrived = new Map<string, number>();
  #sending: Promise<void> = Promise.resolve();
  /** Typed and not yet taken by the server (or given up: `failed`), by a local id. */
  readonly #outbox = new Map<
    string,
    { key: string; entry: HistoryEntry; failed: string | null }
  >();
  #localIds = 0;
  readonly #view = new MessageView();
  readonly #sidebar: Sidebar;
  readonly #composer: Composer;
  readonly #error = byId("chat-error");

  constructor(
    private readonly link: Link,
    private readonly history: HistoryStore,
    readonly me: string,
    private readonly notifications: Notifications,
    /** Keeps a new resume token (a password change issues one and ends the others). */
    private readonly saveToken: (token: Uint8Array) => Promise<void>,
  ) {
    this.#sidebar = new Sidebar({
      open: (key) => this.#run(() => this.open(key)),
      addFriend: (name) => this.#run(() => this.#addFriend(name)),
      removeFriend: (name) => this.#run(() => this.#removeFriend(name)),
      createGroup: (name) => this.#run(() => this.#createGroup(name)),
      joinGroup: (id) => this.#run(() => this.#joinGroup(id)),
      declineGroup: (id) => this.#run(() => this.#declineGroup(id)),
      block: (name) => this.#run(() => this.#block(name)),
      unblock: (name) => this.#run(() => this.#unblock(name)),
    });
    this.#composer = new Composer({
      text: (text) => this.sendText(text),
      image: (file) => this.#run(() => this.sendImage(file)),
      file: (file) => this.#run(() => this.sendFile(file)),
    });
    installSwitcher(() => this.#choices(), (what) => this.#run(() => this.open(what)));
    byId("members-button").addEventListener("click", () => this.#run(() => this.#members()));
    byId("invite-button").addEventListener("click", () => this.#run(() => this.#invite()));
    byId("leave-button").addEventListener("click", () => this.#run(() => this.#leave()));
    byId("block-button").addEventListener("click", () => {
      const t = this.#current.target;
      if ("user" in t) this.#run(() => this.#block(t.user));
    });
    const password = byId("password-button");
    password.hidden = false;
    password.addEventListener("click", () => this.#run(() => this.#changePassword()));
    // What arrived in the open conversation while the page was hidden was counted unread; seen
    // now that the page is back in front.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "visible") return;
      const key = this.#current.key;
      this.history.markRead(key).then(() => this.#refresh(), (e) => this.#fail(String(e)));
    });
  }

  /** Runs a user's action, showing its failure in the page. */
  #run(action: () => Promise<void>): void {
    this.#error.textContent = "";
    action().catch((e) => this.#fail((e as Error).message));
  }

  #fail(text: string): void {
    this.#error.textContent = text;
  }

  #note(text: string): void {
    this.#view.note(text);
  }

  #live(): Promise<ParleyClient> {
    const c = this.link.client;
    if (!c || c.isClosed) {
      return Promise.reject(new Error("Offline: try again once the connection is back"));
    }
    return Promise.resolve(c);
  }

  #refresh(): void {
    const key = this.#current.key;
    this.#sidebar.recent(this.history.recent(), key);
    const c = this.link.client;
    this.#sidebar.friends(this.#friends, key, c !== null && !c.isClosed);
    this.#sidebar.groups(this.#groups, key);
    this.#sidebar.waiting(this.#requests, this.#invitations);
    this.#sidebar.blocked(this.#blocked);
    const unread = this.history.recent().reduce((n, c) => n + c.unread, 0);
    document.title = unread > 0 ? `(${unread}) Parley` : "Parley";
    const group = "group" in this.#current.target;
    for (const id of ["members-button", "invite-button", "leave-button"]) byId(id).hidden = !group;
    byId("block-button").hidden = !("user" in this.#current.target);
  }

  /** The connection went down or came back: presence is shown as known or not. */
  linkChanged(): void {
    this.#refresh();
  }

  // Incoming.

  async onEvent(m: Message): Promise<void> {
    const b = m.body as Body;
    switch (m.type) {
      case MsgType.INITIALIZE:
        return await this.#initialize(b);
      case MsgType.PASS:
        return await this.#incoming(b);
      case MsgType.NEW_FRIEND:
        this.#friends.set(b.username, true);
        this.#requests = this.#requests.filter((r) => r.toLowerCase() !== b.username.toLowerCase());
        this.#note(`${b.username} accepted: you are friends now.`);
        break;
      case MsgType.FRIEND_REQUEST:
        if (!this.#requests.includes(b.username)) this.#requests.push(b.username);
        this.#note(`${b.username} asks to be your friend (see "Waiting for you").`);
        this.notifications.show("Parley", `${b.username} asks to be your friend`);
        break;
      case MsgType.G_INVITATION:
        this.#invitations.push({
          group_id: b.group_id,
          group_name: b.group_name,
          source_name: b.source_name,
        });
        this.#note(`${b.source_name} invites you to #${b.group_id} ${b.group_name}.`);
        break;
      case MsgType.FRIEND_REMOVED:
        this.#friends.delete(b.username);
        this.#note(`${b.username} removed you from their friends.`);
        break;
      case MsgType.FRIEND_ONLINE:
      case MsgType.FRIEND_OFFLINE:
        this.#friends.set(b.username, m.type === MsgType.FRIEND_ONLINE);
        break;
      case MsgType.ADD_TO_G:
        this.#groups.set(b.group_id, b.group_name);
        this.#note(`${b.source_name} added you to #${b.group_id} ${b.group_name}.`);
        break;
      case MsgType.NEW_MEMBER:
        this.#note(`${b.source_name} added ${b.username} to #${b.group_id} ${b.group_name}.`);
        break;
      case MsgType.MEMBER_LEFT:
        this.#note(`${b.username} left #${b.group_id} ${b.group_name}.`);
        break;
      case MsgType.FILE_INCOMING:
        this.#offer(b as Offer);
        break;
      case MsgType.FILE_CANCELLED:
        this.#note(`File transfer ${b.transfer_id} stopped: ${b.reason}`);
        break;
      // KICK: the link ends, and the page shows why with a "Reconnect here" (main.ts).
      case MsgType.GENERAL_ERROR:
        this.#fail(`Server: ${b.message}`);
        break;
    }
    this.#refresh();
  }

  async #initialize(b: Body): Promise<void> {
    this.#groups.clear();
    for (const g of b.groups as { group_id: number; group_name: string }[]) {
      this.#groups.set(g.group_id, g.group_name);
    }
    this.#friends.clear();
    for (const f of b.friends as { username: string; online: boolean }[]) {
      this.#friends.set(f.username, f.online);
    }
    this.#requests = [...(b.requests as string[] | undefined) ?? []];
    this.#invitations = [...(b.invitations as Invitation[] | undefined) ?? []];
    if (b.limits) this.#limits = { ...DEFAULT_LIMITS, ...(b.limits as Partial<ServerLimits>) };
    for (const w of b.world as Body[]) {
      if (!this.history.has(w.source_username, w.id)) {
        await this.#record(WORLD, w, this.#current.key !== WORLD.key);
      }
    }
    this.#backlog = typeof b.pending === "number" ? b.pending : 0;
    this.#arrived.clear();
    this.#refresh();
    // Not in INITIALIZE: asked once logged in, and shown when it comes.
    this.#live().then((c) => c.blocks()).then((names) => {
      this.#blocked = names;
      this.#refresh();
    }, () => {});
  }

  /** A message: stored, shown, then acknowledged (also when it cannot be stored or shown). */
  async #incoming(b: Body): Promise<void> {
    const seq = typeof b.seq === "number" ? b.seq : 0;
    const fromBacklog = seq > 0 && this.#backlog > 0;
    let conv: Conversation | null = null;
    // Stored already, acknowledged too late (the page closed first): acknowledged, not kept twice.
    const stored = b.id instanceof Uint8Array && this.history.has(b.source_username, b.id);
    try {
      conv = conversationOf(b, this.#groups);
      if (stored) return;
      const here = this.#current.key === conv.key && document.visibilityState === "visible";
      const entry = await this.#record(conv, b, !here);
      if (this.#current.key === conv.key) this.#view.add(entry, this.me);
      if (!fromBacklog && !here) {
        this.notifications.show(
          `${entry.from} in ${conv.label}`,
          entry.kind === "image" ? "an image" : entry.text,
          () => this.#run(() => this.open(conv!.key)),
        );
      }
    } catch (e) {
      this.#fail(`A message from ${b.source_username} could not be shown: ${(e as Error).message}`);
    } finally {
      if (seq > 0) this.link.ack(seq);
      if (fromBacklog) this.#fromBacklog(stored ? null : conv?.label ?? "?");
      this.#refresh();
    }
  }

  /** Counts one message of the login backlog (`label` null: a copy of one stored already). */
  #fromBacklog(label: string | null): void {
    if (label !== null) this.#arrived.set(label, (this.#arrived.get(label) ?? 0) + 1);
    if (--this.#backlog === 0 && this.#arrived.size > 0) this.#summary();
  }

  #summary(): void {
    const total = [...this.#arrived.values()].reduce((a, b) => a + b, 0);
    const parts = [...this.#arrived].map(([label, n]) => `${label} (${n})`);
    this.#note(
      `${total} message${total === 1 ? "" : "s"} arrived while you were away: ${parts.join(", ")}.`,
    );
  }

  async #record(conv: Conversation, b: Body, unread: boolean): Promise<HistoryEntry> {
    const entry: HistoryEntry = {
      id: (b.id as Uint8Array).toHex(),
      from: b.source_username,
      time: (b.time as Date).toISOString(),
      kind: b.type === "image" ? "image" : "text",
      text: b.type === "image" ? "" : String(b.data),
    };
    if (b.type === "image") {
      const data = b.data as Uint8Array;
      entry.image = data;
      entry.name = typeof b.name === "string" && b.name ? b.name : `${entry.id.slice(0, 8)}.img`;
      entry.text = `${entry.name} (${formatSize(data.length)})`;
    }
    await this.history.append(conv.key, conv.label, entry, unread);
    return entry;
  }

  // Conversations.

  /** Opens "*world"/"world", "#ID" or "@name"/"name". */
  async open(what: string): Promise<void> {
    const conv = await this.#resolve(what.trim());
    this.#current = conv;
    // Marked read first, so that the messages and the cleared count appear together.
    await this.history.markRead(conv.key);
    const entries = await this.history.last(conv.key, SHOWN);
    this.#view.show(conv.label, entries, this.me);
    for (const o of this.#outbox.values()) {
      if (o.key === conv.key) this.#view.pending(o.entry, o.failed);
    }
    this.#refresh();
    this.#composer.use(`${this.me.toLowerCase()}/${conv.key}`);
    this.#composer.focus();
  }

  async #resolve(what: string): Promise<Conversation> {
    if (what === "world" || what === WORLD.key) return WORLD;
    if (what.startsWith("#")) {
      const id = Number(what.slice(1).split(" ")[0]);
      if (!Number.isInteger(id) || id < 1) throw new Error(`"${what}" is not a group id`);
      if (!this.#groups.has(id) && !this.history.info(`#${id}`)) {
        throw new Error(`You are not in a group #${id}`);
      }
      return groupConversation(id, this.#groups.get(id) ?? "");
    }
    const name = what.replace(/^@/, "");
    const known = this.history.info(`@${name.toLowerCase()}`);
    const c = this.link.client;
    if (c && !c.isClosed) return userConversation(await c.findUser(name));
    if (known) return userConversation(known.label.replace(/^@/, ""));
    throw new Error(`Offline: cannot check that ${name} exists`);
  }

  #choices(): string[] {
    return [
      "world",
      ...this.history.recent().map((c) => c.key.startsWith("@") ? c.label.slice(1) : c.label),
      ...[...this.#friends.keys()],
      ...[...this.#groups].map(([id, name]) => `#${id} ${name}`),
    ].filter((v, i, all) => all.indexOf(v) === i);
  }

  // Outgoing.

  /**
   * Sends in the order typed; while offline the message waits for the link to come back. False
   * (with the reason shown) when the text cannot be sent at all, so the box keeps it to be fixed.
   */
  sendText(text: string): boolean {
    const conv = this.#current;
    const problem = textProblem(text, this.#limits);
    if (problem) {
      this.#fail(`Not sent: ${problem}.`);
      return false;
    }
    this.#queue(conv, { kind: "text", text }, () => this.link.sendText(conv.target, text));
    return true;
  }

  async sendImage(file: File): Promise<void> {
    const conv = this.#current;
    if ("world" in conv.target) {
      throw new Error("The world room takes text; send images to friends or groups");
    }
    const max = Math.min(
      this.#limits.max_image_bytes,
      this.#limits.max_frame_bytes - SEND_OVERHEAD_BYTES,
    );
    // Checked before reading: an oversize file is refused without loading it into memory.
    if (file.size > max) {
      throw new Error(
        `Not sent: images are limited to ${formatSize(max)} on this server; "${file.name}" has ${
          formatSize(file.size)
        }.`,
      );
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    const problem = imageProblem(bytes, file.name, this.#limits);
    if (problem) throw new Error(`Not sent: ${problem}.`);
    this.#queue(conv, {
      kind: "image",
      text: `${file.name} (${formatSize(bytes.length)})`,
      image: bytes,
      name: file.name,
    }, () => this.link.sendImage(conv.target, bytes, file.name));
  }

  async sendFile(file: File): Promise<void> {
    const conv = this.#current;
    if (!("user" in conv.target)) {
      throw new Error("Files go to one person: open a private conversation first");
    }
    const problem = fileProblem(file.size, file.name, this.#limits);
    if (problem) throw new Error(`Not sent: ${problem}.`);
    const to = conv.target.user;
    const client = await this.#live();
    const line = new TransferLine(`→ ${to}: "${file.name}"`, file.size, {
      "data-outgoing": file.name,
    });
    try {
      const result = await client.sendFile(to, file.name, fileSource(file), line.progress);
      line.finish(
        result.sha256Ok
          ? "sent, SHA-256 verified by the receiver"
          : "sent, but the SHA-256 check FAILED",
        result.sha256Ok,
      );
    } catch (e) {
      line.finish(`not sent: ${(e as Error).message}`, false);
    }
  }

  #offer(offer: Offer): void {
    this.notifications.show("Parley", `${offer.source_username} offers the file "${offer.name}"`);
    showOffer(offer, {
      accept: async (o, sink, line) =>
        await (await this.#live()).acceptFile(o, sink, line.progress),
      deny: async (o) => await (await this.#live()).denyFile(o.transfer_id),
    }, (text) => this.#note(text));
  }

  /**
   * Shows the message at once, marked as being sent, and sends it after those typed before;
   * once the server has it, the stored message takes the mark's place; given up, it says so.
   */
  #queue(
    conv: Conversation,
    what: Pick<HistoryEntry, "kind" | "text" | "image" | "name">,
    send: () => Promise<SentReceipt>,
  ): void {
    const id = `local-${++this.#localIds}`;
    const entry: HistoryEntry = { id, from: this.me, time: new Date().toISOString(), ...what };
    const item = { key: conv.key, entry, failed: null as string | null };
    this.#outbox.set(id, item);
    if (this.#current.key === conv.key) this.#view.pending(entry, null);
    this.#sending = this.#sending.then(async () => {
      try {
        const receipt = await send();
        this.#outbox.delete(id);
        this.#view.drop(id);
        await this.#mine(conv, receipt.id, receipt.time, what, receipt.skipped);
      } catch (e) {
        item.failed = (e as Error).message;
        if (this.#current.key === conv.key) this.#view.pending(entry, item.failed);
        this.#fail(`Not sent to ${conv.label}: ${item.failed}.`);
      }
    });
  }

  /** Keeps what the user sent, once the server has it, and shows it. */
  async #mine(
    conv: Conversation,
    id: Uint8Array,
    time: Date,
    what: Pick<HistoryEntry, "kind" | "text" | "image" | "name">,
    skipped?: string[],
  ): Promise<void> {
    const entry: HistoryEntry = {
      id: id.toHex(),
      from: this.me,
      time: time.toISOString(),
      ...what,
    };
    // Our own world messages come back in the backlog after a reconnect: known, not shown twice.
    this.link.seen.first(this.me, id);
    await this.history.append(conv.key, conv.label, entry, false);
    if (this.#current.key === conv.key) this.#view.add(entry, this.me);
    // An earlier refusal is over once a later message went through.
    if (/^Not (sent|delivered)/.test(this.#error.textContent ?? "")) this.#error.textContent = "";
    if (skipped?.length) this.#fail(`Not delivered to ${skipped.join(", ")}: their queue is full.`);
    this.#refresh();
  }

  /** Resolves once everything typed so far was sent or reported as not sent. */
  sent(): Promise<void> {
    return this.#sending;
  }

  // Friends and groups.

  async #addFriend(name: string): Promise<void> {
    const r = await (await this.#live()).addFriend(name);
    this.#requests = this.#requests.filter((x) => x.toLowerCase() !== r.username.toLowerCase());
    if (r.pending) this.#note(`Asked ${r.username} to be your friend.`);
    else {
      this.#friends.set(r.username, r.online);
      this.#note(`${r.username} and you are friends now.`);
    }
    this.#refresh();
  }

  async #removeFriend(name: string): Promise<void> {
    await (await this.#live()).removeFriend(name);
    this.#friends.delete(name);
    this.#requests = this.#requests.filter((x) => x.toLowerCase() !== name.toLowerCase());
    this.#refresh();
  }

  async #block(name: string): Promise<void> {
    const c = await this.#live();
    const who = await c.block(name);
    const key = who.toLowerCase();
    if (!this.#blocked.some((b) => b.toLowerCase() === key)) this.#blocked.push(who);
    this.#requests = this.#requests.filter((r) => r.toLowerCase() !== key);
    for (const f of [...this.#friends.keys()]) if (f.toLowerCase() === key) this.#friends.delete(f);
    this.#note(`You blocked ${who}: no contact either way until you unblock them.`);
    this.#refresh();
  }

  async #unblock(name: string): Promise<void> {
    await (await this.#live()).unblock(name);
    this.#blocked = this.#blocked.filter((b) => b.toLowerCase() !== name.toLowerCase());
    this.#note(`You unblocked ${name}.`);
    this.#refresh();
  }

  /** A new password ends every other session and token; this page keeps the fresh token. */
  async #changePassword(): Promise<void> {
    const old = await prompt("Change your password", [], "Current password", "password");
    if (!old) return;
    const next = await prompt("Change your password", [], "New password", "password");
    if (!next) return;
    const result = await (await this.#live()).changePassword(old, next);
    if (result.token) await this.saveToken(result.token);
    this.#note("Password changed. Your other sessions and devices have been logged out.");
  }

  async #createGroup(name: string): Promise<void> {
    const g = await (await this.#live()).createGroup(name, []);
    this.#groups.set(g.group_id, g.group_name);
    await this.open(`#${g.group_id}`);
  }

  async #joinGroup(id: number): Promise<void> {
    const g = await (await this.#live()).joinGroup(id);
    this.#invitations = this.#invitations.filter((i) => i.group_id !== id);
    this.#groups.set(g.group_id, g.group_name);
    await this.open(`#${g.group_id}`);
  }

  async #declineGroup(id: number): Promise<void> {
    await (await this.#live()).declineGroup(id);
    this.#invitations = this.#invitations.filter((i) => i.group_id !== id);
    this.#refresh();
  }

  #groupId(): number {
    const t = this.#current.target;
    if (!("group" in t)) throw new Error("Open a group first");
    return t.group;
  }

  async #members(): Promise<void> {
    const members = await (await this.#live()).members(this.#groupId());
    await prompt(
      `Members of ${this.#current.label}`,
      members.map((m) => `${m.online ? "●" : "○"} ${m.username}`),
    );
  }

  async #invite(): Promise<void> {
    const id = this.#groupId();
    const name = await prompt(`Invite to ${this.#current.label}`, [], "username");
    if (!name) return;
    const g = await (await this.#live()).invite(id, name);
    this.#note(
      g.pending
        ? `Invited ${name} to #${g.group_id}; they join once they accept.`
        : `${name} is now in #${g.group_id} ${g.group_name}.`,
    );
  }

  async #leave(): Promise<void> {
    const id = this.#groupId();
    await (await this.#live()).leaveGroup(id);
    this.#groups.delete(id);
    await this.open("world");
  }
}
