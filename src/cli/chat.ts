/**
 * The interactive chat session: slash commands, the current conversation, incoming messages
 * and notifications printed above the input line, local history, files and images.
 */

import { basename, join } from "node:path";
import type { Target } from "../client/client.ts";
import type { FileSource } from "../client/files.ts";
import type { Link } from "../client/link.ts";
import {
  DEFAULT_LIMITS,
  fileProblem,
  imageProblem,
  type ServerLimits,
  textProblem,
} from "../client/outgoing.ts";
import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import type { Message } from "../protocol/message_codec.ts";
import { MsgType } from "../protocol/messages.ts";
import type { History, HistoryEntry } from "./history.ts";
import { choosePassword, CliFailure } from "./login.ts";
import { downloadsDir } from "./paths.ts";
import { clock, formatEntry, formatSize, Painter, progressBar } from "./render.ts";
import type { Terminal } from "./terminal.ts";

export const CHAT_HELP =
  `Commands (plain text goes to the current conversation; end a line with \\ to continue it):
  /to NAME | /to #ID | /world   open a conversation with a user, a group or the world room
  /recent                       conversations by last activity, with the last message
  /history [N]                  the last N messages of the current conversation (default 20)
  /friends  /groups             your friends (with who is online) and your groups
  /add NAME  /remove NAME       add or remove a friend
  /create NAME [MEMBER...]      create a group ("quotes" for a name with spaces)
  /invite NAME [#ID]            invite someone to a group (the current one by default)
  /members [#ID]  /leave [#ID]  list a group's members; leave a group
  /who [PAGE]                   who is online
  /image PATH                   send an image to the current conversation
  /file PATH                    offer a file to the current user
  /accept [ID]  /deny [ID]      answer a file offer (the latest by default)
  /passwd                       change your password
  /logout                       log out (this device must log in again) and quit
  /quit                         quit`;

interface Conversation {
  key: string;
  label: string;
  target: Target;
}

interface Offer {
  transfer_id: number;
  source_username: string;
  name: string;
  size: number;
  sha256: Uint8Array;
}

type Body = Record<string, unknown>;

const WORLD: Conversation = { key: "*world", label: "world", target: { world: true } };

/** Users per /who page. */
const WHO_PAGE = 50;
const HISTORY_DEFAULT = 20;
/** The most /history shows at once: more scrolls out of any terminal. */
const HISTORY_MAX = 1000;
/** On /quit, how long messages still on their way may hold the client (while connected). */
const QUIT_WAIT_MS = 10_000;

/** How long a command may wait for the server before the client gives up on the answer. */
const COMMAND_TIMEOUT_MS = 20_000;

function withDeadline<T>(p: Promise<T>, ms: number, command: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ParleyError(
            ErrorCode.BAD_REQUEST,
            `No answer to ${command} from the server within ${ms / 1000} s; it may still happen`,
          ),
        ),
      ms,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A whole number from 1 to `max` given as an argument, `fallback` when absent. */
function wholeNumber(arg: string | undefined, fallback: number, max: number, usage: string) {
  if (arg === undefined) return fallback;
  const n = /^\d+$/.test(arg) ? Number(arg) : NaN;
  if (!(n >= 1 && n <= max)) throw new ParleyError(ErrorCode.BAD_REQUEST, usage);
  return n;
}

/** Reads a local file, with a sentence for the usual problems. */
async function readLocal(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new ParleyError(ErrorCode.BAD_REQUEST, localProblem(path, e));
  }
}

function localProblem(path: string, e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return `No such file: ${path}`;
  if (e instanceof Deno.errors.PermissionDenied) return `Not allowed to read ${path}`;
  if (e instanceof Deno.errors.IsADirectory) return `${path} is a folder, not a file`;
  return `Cannot read ${path}: ${(e as Error).message}`;
}

/** Splits a command line into words, honouring "double quotes". */
export function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

export class ChatSession {
  readonly #p: Painter;
  #current: Conversation | null = null;
  #groups = new Map<number, string>();
  #offers = new Map<number, Offer>();
  /** Messages from the login backlog still to come, and where they went. */
  #backlog = 0;
  #arrived = new Map<string, number>();
  #sending: Promise<void> = Promise.resolve();
  /** Messages queued in #sending that are not yet sent or reported as not sent. */
  #unsent = 0;
  /** Progress bars made so far: each gets its own line. */
  #bars = 0;
  /** What the server announced at login; the documented defaults until then. */
  #limits: ServerLimits = { ...DEFAULT_LIMITS };

  constructor(
    private readonly link: Link,
    private readonly term: Terminal,
    private readonly history: History,
    private readonly me: string,
  ) {
    this.#p = new Painter(term.colors);
  }

  #say(text: string): void {
    this.term.print(text);
  }

  #note(text: string): void {
    this.term.print(this.#p.paint(`-- ${text}`, "dim"));
  }

  #warn(text: string): void {
    this.term.print(this.#p.paint(text, "red"));
  }

  #prompt(): void {
    this.term.setPrompt(this.#current ? `${this.#current.label}> ` : "> ");
  }

  /** Puts the conversation prompt back (after a continued line). */
  restorePrompt(): void {
    this.#prompt();
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
        return this.#note(`${b.username} added you as a friend.`);
      case MsgType.FRIEND_REMOVED:
        return this.#note(`${b.username} removed you from their friends.`);
      case MsgType.FRIEND_ONLINE:
        return this.#note(`${b.username} is online.`);
      case MsgType.FRIEND_OFFLINE:
        return this.#note(`${b.username} went offline.`);
      case MsgType.ADD_TO_G:
        this.#groups.set(b.group_id as number, b.group_name as string);
        return this.#note(
          `${b.source_name} added you to #${b.group_id} ${b.group_name} (${
            (b.group_members as string[]).join(", ")
          }).`,
        );
      case MsgType.NEW_MEMBER:
        return this.#note(
          `${b.source_name} added ${b.username} to #${b.group_id} ${b.group_name}.`,
        );
      case MsgType.MEMBER_LEFT:
        return this.#note(`${b.username} left #${b.group_id} ${b.group_name}.`);
      case MsgType.FILE_INCOMING: {
        const offer = b as unknown as Offer;
        this.#offers.set(offer.transfer_id, offer);
        return this.#note(
          `${offer.source_username} offers the file "${offer.name}" (${formatSize(offer.size)}). ` +
            `/accept ${offer.transfer_id} or /deny ${offer.transfer_id}`,
        );
      }
      case MsgType.FILE_CANCELLED:
        this.#offers.delete(b.transfer_id as number);
        return this.#warn(`File transfer ${b.transfer_id} stopped: ${b.reason}`);
      case MsgType.KICK:
        return this.#warn(`${b.reason}. This session has ended.`);
      case MsgType.GENERAL_ERROR:
        return this.#warn(`Server: ${b.message}`);
    }
  }

  async #initialize(b: Body): Promise<void> {
    const friends = b.friends as { username: string; online: boolean }[];
    const groups = b.groups as { group_id: number; group_name: string }[];
    for (const g of groups) this.#groups.set(g.group_id, g.group_name);
    if (b.limits) this.#limits = { ...DEFAULT_LIMITS, ...(b.limits as Partial<ServerLimits>) };
    for (const w of b.world as Body[]) {
      if (this.link.seen.first(w.source_username as string, w.id as Uint8Array)) {
        await this.#record(WORLD, w, false);
      }
    }
    this.#backlog = b.pending as number;
    this.#arrived.clear();
    const online = friends.filter((f) => f.online).map((f) => f.username);
    this.#note(
      `${friends.length} friend${friends.length === 1 ? "" : "s"}` +
        (online.length ? ` (online: ${online.join(", ")})` : "") +
        `, ${groups.length} group${groups.length === 1 ? "" : "s"}.`,
    );
    if (this.#backlog === 0) this.#prompt();
  }

  #conversationOf(b: Body): Conversation {
    if (b.world) return WORLD;
    if (typeof b.group_id === "number") {
      const name = (b.group_name as string | undefined) ?? this.#groups.get(b.group_id) ?? "";
      return {
        key: `#${b.group_id}`,
        label: `#${b.group_id} ${name}`.trim(),
        target: { group: b.group_id },
      };
    }
    const other = b.source_username as string;
    return { key: `@${other.toLowerCase()}`, label: `@${other}`, target: { user: other } };
  }

  async #incoming(b: Body): Promise<void> {
    const conv = this.#conversationOf(b);
    const seq = b.seq as number;
    const entry = await this.#record(conv, b, this.#current?.key !== conv.key);
    await this.history.remember(b.source_username as string, b.id as Uint8Array);
    // Acknowledged only once it is in local history, so a crash here loses nothing.
    if (seq > 0) this.link.ack(seq);
    if (seq > 0 && this.#backlog > 0) {
      this.#arrived.set(conv.label, (this.#arrived.get(conv.label) ?? 0) + 1);
      if (--this.#backlog === 0) this.#summary();
      if (this.#current?.key === conv.key) {
        this.#say(formatEntry(this.#p, conv.label, entry, false));
      }
      return;
    }
    this.#say(formatEntry(this.#p, conv.label, entry, this.#current?.key !== conv.key));
  }

  #summary(): void {
    const total = [...this.#arrived.values()].reduce((a, b) => a + b, 0);
    const parts = [...this.#arrived].map(([label, n]) => `${label} (${n})`);
    this.#say(
      this.#p.paint(
        `${total} message${total === 1 ? "" : "s"} arrived while you were away: ${
          parts.join(", ")
        }.`,
        "yellow",
      ) +
        " Open one with /to.",
    );
    this.#prompt();
  }

  async #record(conv: Conversation, b: Body, unread: boolean): Promise<HistoryEntry> {
    const entry: HistoryEntry = {
      id: (b.id as Uint8Array).toHex(),
      from: b.source_username as string,
      time: (b.time as Date).toISOString(),
      kind: b.type === "image" ? "image" : "text",
      text: b.type === "image" ? "" : b.data as string,
    };
    if (b.type === "image") {
      const name = (b.name as string | undefined) ?? `${entry.id.slice(0, 8)}.img`;
      entry.path = await this.#save(`${entry.from}-${basename(name)}`, b.data as Uint8Array);
      entry.text = `${name} (${formatSize((b.data as Uint8Array).length)}) saved to ${entry.path}`;
    }
    await this.history.append(conv.key, conv.label, entry, unread);
    return entry;
  }

  /** Saves received bytes under the downloads folder without overwriting anything. */
  async #save(name: string, data: Uint8Array): Promise<string> {
    const dir = downloadsDir();
    await Deno.mkdir(dir, { recursive: true });
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    for (let i = 0;; i++) {
      const path = join(dir, i === 0 ? name : `${stem} (${i})${ext}`);
      try {
        await Deno.writeFile(path, data, { createNew: true });
        return path;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
    }
  }

  // Outgoing.

  /** Handles one line; returns false when the session should end. */
  async handle(line: string): Promise<boolean> {
    if (!line.startsWith("/")) {
      if (line.trim() === "") return true;
      this.#send(line);
      return true;
    }
    const [command, ...args] = words(line);
    try {
      // /passwd waits for the user's typing; every other command gets an answer in time, so
      // that a server that stopped answering cannot keep /quit from being read.
      if (command === "/passwd") return await this.#command(command, args);
      return await withDeadline(this.#command(command, args), COMMAND_TIMEOUT_MS, command);
    } catch (e) {
      // Sentences only: the wire codes are for programs.
      if (e instanceof ParleyError) this.#warn(e.message);
      else if (e instanceof Error && e.name === "ConnectionClosedError") this.#warn(e.message);
      else throw e;
      return true;
    }
  }

  /**
   * The connection, or a refusal at once while it is down: a command never waits for a
   * reconnection, so that the next line (/quit) is always read.
   */
  #live() {
    const c = this.link.client;
    if (!c || c.isClosed) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, "Not connected; try again once reconnected");
    }
    return Promise.resolve(c);
  }

  #group(arg: string | undefined): number {
    if (arg !== undefined) {
      const id = Number(arg.replace(/^#/, ""));
      if (!Number.isInteger(id) || id <= 0) {
        throw new ParleyError(9, `"${arg}" is not a group id like #12`);
      }
      return id;
    }
    if (this.#current && "group" in this.#current.target) return this.#current.target.group;
    throw new ParleyError(9, "Name a group (#ID) or open one with /to #ID");
  }

  async #command(command: string, args: string[]): Promise<boolean> {
    switch (command) {
      case "/help":
        this.#say(CHAT_HELP);
        return true;
      case "/quit":
      case "/exit":
        return false;
      case "/logout":
        await (await this.#live()).logout();
        this.#say(`Logged out ${this.me}.`);
        return false;
      case "/to":
      case "/open":
        if (!args[0]) throw new ParleyError(9, "Usage: /to NAME, /to #ID or /to world");
        await this.#open(args[0]);
        return true;
      case "/world":
        await this.#open("world");
        return true;
      case "/recent":
        this.#recent();
        return true;
      case "/history":
        await this.#showHistory(
          wholeNumber(
            args[0],
            HISTORY_DEFAULT,
            HISTORY_MAX,
            "Usage: /history [N], N from 1 to 1000",
          ),
        );
        return true;
      case "/friends": {
        const friends = await (await this.#live()).friends();
        this.#say(
          friends.length
            ? friends.map((f) => `  ${f.online ? this.#p.paint("●", "green") : "○"} ${f.username}`)
              .join("\n")
            : "No friends yet. Add one with /add NAME.",
        );
        return true;
      }
      case "/groups": {
        const groups = await (await this.#live()).groups();
        for (const g of groups) this.#groups.set(g.group_id, g.group_name);
        this.#say(
          groups.length
            ? groups.map((g) => `  #${g.group_id} ${g.group_name}`).join("\n")
            : "No groups yet. Create one with /create NAME [MEMBER...].",
        );
        return true;
      }
      case "/add": {
        if (!args[0]) throw new ParleyError(9, "Usage: /add NAME");
        const r = await (await this.#live()).addFriend(args[0]);
        this.#note(`${r.username} is now your friend${r.online ? " (online)" : ""}.`);
        return true;
      }
      case "/remove": {
        if (!args[0]) throw new ParleyError(9, "Usage: /remove NAME");
        await (await this.#live()).removeFriend(args[0]);
        this.#note(`${args[0]} is no longer your friend.`);
        return true;
      }
      case "/create": {
        if (!args[0]) throw new ParleyError(9, "Usage: /create NAME [MEMBER...]");
        const g = await (await this.#live()).createGroup(args[0], args.slice(1));
        this.#groups.set(g.group_id, g.group_name);
        this.#note(`Created #${g.group_id} ${g.group_name} with ${g.group_members.join(", ")}.`);
        await this.#open(`#${g.group_id}`);
        return true;
      }
      case "/invite": {
        if (!args[0]) throw new ParleyError(9, "Usage: /invite NAME [#ID]");
        const g = await (await this.#live()).invite(this.#group(args[1]), args[0]);
        this.#note(
          `${args[0]} is now in #${g.group_id} ${g.group_name} (${g.group_members.join(", ")}).`,
        );
        return true;
      }
      case "/members": {
        const id = this.#group(args[0]);
        const members = await (await this.#live()).members(id);
        this.#say(
          members.map((m) => `  ${m.online ? this.#p.paint("●", "green") : "○"} ${m.username}`)
            .join("\n"),
        );
        return true;
      }
      case "/leave": {
        const id = this.#group(args[0]);
        await (await this.#live()).leaveGroup(id);
        this.#note(`You left #${id} ${this.#groups.get(id) ?? ""}.`);
        this.#groups.delete(id);
        if (this.#current?.key === `#${id}`) {
          this.#current = null;
          this.#prompt();
        }
        return true;
      }
      case "/who": {
        const page = wholeNumber(
          args[0],
          1,
          Number.MAX_SAFE_INTEGER,
          "Usage: /who [PAGE], PAGE from 1",
        );
        const r = await (await this.#live()).who((page - 1) * WHO_PAGE, WHO_PAGE);
        const pages = Math.max(1, Math.ceil(r.total / WHO_PAGE));
        if (page > pages) {
          throw new ParleyError(
            ErrorCode.BAD_REQUEST,
            `There is no page ${page}: ${r.total} online fit on ${pages} page${
              pages === 1 ? "" : "s"
            }`,
          );
        }
        this.#say(
          `${r.total} online${pages > 1 ? ` (page ${page} of ${pages})` : ""}: ${
            r.users.join(", ")
          }`,
        );
        return true;
      }
      case "/image":
        await this.#sendImage(args.join(" "));
        return true;
      case "/file":
        this.#sendFile(args.join(" "));
        return true;
      case "/accept":
      case "/deny":
        await this.#answer(command === "/accept", args[0]);
        return true;
      case "/passwd":
        await this.#passwd();
        return true;
      default:
        this.#warn(`Unknown command ${command}. Type /help for the list.`);
        return true;
    }
  }

  async #open(what: string): Promise<void> {
    let conv: Conversation;
    if (what === "world" || what === "*world") conv = WORLD;
    else if (what.startsWith("#")) {
      const id = this.#group(what);
      const name = this.#groups.get(id) ?? "";
      conv = { key: `#${id}`, label: `#${id} ${name}`.trim(), target: { group: id } };
    } else {
      const name = await this.#existing(what.replace(/^@/, ""));
      conv = { key: `@${name.toLowerCase()}`, label: `@${name}`, target: { user: name } };
    }
    this.#current = conv;
    await this.#showHistory(20);
    await this.history.markRead(conv.key);
    this.#prompt();
  }

  /**
   * The registered spelling of a user to chat with, asked of the server, so that a typo opens no
   * conversation with nobody. Offline, only a conversation already in local history opens.
   */
  async #existing(name: string): Promise<string> {
    const client = this.link.client;
    if (client && !client.isClosed) {
      return await client.findUser(name).catch((e) => {
        // A server from before FIND_USER: open the conversation unchecked.
        if (e instanceof ParleyError && e.code === ErrorCode.UNKNOWN_TYPE) return name;
        throw e;
      });
    }
    const known = this.history.recent().find((c) => c.key === `@${name.toLowerCase()}`);
    if (known) return known.label.slice(1);
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      `Not connected, so "${name}" cannot be checked; try again once reconnected`,
    );
  }

  #recent(): void {
    const list = this.history.recent();
    if (list.length === 0) return this.#say("No conversations yet.");
    this.#say(
      list.map((c) => {
        const unread = c.unread ? this.#p.paint(` (${c.unread} new)`, "yellow") : "";
        const preview = c.last.text.split("\n")[0].slice(0, 60);
        return `  ${this.#p.paint(c.label, "bold")}${unread}  ${
          clock(c.last.time)
        } <${c.last.from}> ${preview}`;
      }).join("\n"),
    );
  }

  async #showHistory(n: number): Promise<void> {
    if (!this.#current) {
      throw new ParleyError(9, "Open a conversation first: /to NAME, /to #ID or /world");
    }
    const entries = await this.history.last(this.#current.key, n);
    this.#say(this.#p.paint(`── ${this.#current.label} ──`, "bold"));
    for (const e of entries) this.#say(formatEntry(this.#p, this.#current.label, e, false));
  }

  /** Sends in the order typed; a dropped connection delays, it does not lose. */
  #send(text: string): void {
    const conv = this.#current;
    if (!conv) {
      this.#warn("Open a conversation first: /to NAME, /to #ID or /world");
      return;
    }
    const problem = textProblem(text, this.#limits);
    if (problem) {
      this.#warn(`Not sent: ${problem}.`);
      return;
    }
    if (!this.link.client) this.#note("Offline: the message will go when the connection is back.");
    this.#queue(conv, async () => {
      const receipt = await this.link.sendText(conv.target, text);
      await this.#mine(conv, receipt.id, receipt.time, "text", text, receipt.skipped);
    });
  }

  /** Sends in the order typed, in the background, so that typing (and /quit) goes on. */
  #queue(conv: Conversation, send: () => Promise<void>): void {
    this.#unsent++;
    this.#sending = this.#sending.then(async () => {
      try {
        await send();
      } catch (e) {
        this.#warn(`Not sent to ${conv.label}: ${(e as Error).message}.`);
      } finally {
        this.#unsent--;
      }
    });
  }

  async #mine(
    conv: Conversation,
    id: Uint8Array,
    time: Date,
    kind: "text" | "image",
    text: string,
    skipped?: string[],
  ): Promise<void> {
    const entry: HistoryEntry = {
      id: id.toHex(),
      from: this.me,
      time: time.toISOString(),
      kind,
      text,
    };
    await this.history.append(conv.key, conv.label, entry, false);
    this.#say(formatEntry(this.#p, conv.label, entry, this.#current?.key !== conv.key));
    if (skipped?.length) this.#warn(`Not delivered to ${skipped.join(", ")}: their queue is full.`);
  }

  async #sendImage(path: string): Promise<void> {
    const conv = this.#current;
    if (!conv) throw new ParleyError(9, "Open a conversation first: /to NAME, /to #ID or /world");
    if (!path) throw new ParleyError(9, "Usage: /image PATH");
    if ("world" in conv.target) {
      throw new ParleyError(9, "The world room takes text; send images to friends or groups");
    }
    const data = await readLocal(path);
    const name = basename(path);
    const problem = imageProblem(data, name, this.#limits);
    if (problem) throw new ParleyError(ErrorCode.TOO_LARGE, `Not sent: ${problem}`);
    this.#queue(conv, async () => {
      const receipt = await this.link.sendImage(conv.target, data, name);
      await this.#mine(
        conv,
        receipt.id,
        receipt.time,
        "image",
        `${name} (${formatSize(data.length)})`,
      );
    });
  }

  #sendFile(path: string): void {
    const conv = this.#current;
    if (!conv || !("user" in conv.target)) {
      this.#warn("Files go to one person: open a conversation with /to NAME first");
      return;
    }
    if (!path) {
      this.#warn("Usage: /file PATH");
      return;
    }
    const to = conv.target.user;
    // Runs in the background so that chat goes on during the transfer.
    void (async () => {
      try {
        const file = await Deno.open(path, { read: true }).catch((e) => {
          throw new Error(localProblem(path, e));
        });
        const size = (await file.stat()).size;
        const tooBig = fileProblem(size, basename(path), this.#limits);
        if (tooBig) {
          file.close();
          throw new Error(tooBig);
        }
        const source: FileSource = {
          size,
          read: async (offset, length) => {
            const buf = new Uint8Array(length);
            await file.seek(offset, Deno.SeekMode.Start);
            let at = 0;
            while (at < length) {
              const n = await file.read(buf.subarray(at));
              if (n === null) break;
              at += n;
            }
            return buf.subarray(0, at);
          },
        };
        this.#note(`Offering ${basename(path)} (${formatSize(size)}) to ${to}…`);
        const client = await this.#live();
        const bar = this.#progress(`→ ${basename(path)}`);
        try {
          const result = await client.sendFile(to, basename(path), source, bar);
          this.#say(
            result.sha256Ok
              ? this.#p.paint(`Sent ${basename(path)} to ${to}: SHA-256 verified.`, "green")
              : this.#p.paint(
                `Sent ${basename(path)} to ${to}, but the SHA-256 check FAILED.`,
                "red",
              ),
          );
        } finally {
          file.close();
        }
      } catch (e) {
        this.#warn(`File not sent: ${(e as Error).message}`);
      }
    })();
  }

  /**
   * A progress callback: one bar redrawn in place on a terminal (at most every 1 %), a line at
   * most every 10 % elsewhere.
   */
  #progress(label: string): (done: number, total: number) => void {
    const steps = this.term.redraws ? 100 : 10;
    const key = `progress ${++this.#bars}`;
    let shown = -1;
    return (done, total) => {
      const step = total === 0 ? steps : Math.floor((done / total) * steps);
      if (step === shown) return;
      shown = step;
      this.term.update(key, this.#p.paint(`-- ${label} ${progressBar(done, total)}`, "dim"));
    };
  }

  async #answer(accept: boolean, arg: string | undefined): Promise<void> {
    const id = arg !== undefined ? Number(arg) : [...this.#offers.keys()].at(-1);
    const offer = id !== undefined ? this.#offers.get(id) : undefined;
    if (!offer) {
      throw new ParleyError(
        21,
        arg ? `No file offer ${arg} is waiting` : "No file offer is waiting",
      );
    }
    this.#offers.delete(offer.transfer_id);
    const client = await this.#live();
    if (!accept) {
      await client.denyFile(offer.transfer_id);
      this.#note(`Declined "${offer.name}" from ${offer.source_username}.`);
      return;
    }
    const dir = downloadsDir();
    await Deno.mkdir(dir, { recursive: true });
    const path = await this.#save(
      `${offer.source_username}-${basename(offer.name)}`,
      new Uint8Array(0),
    );
    const file = await Deno.open(path, { write: true, truncate: true });
    const bar = this.#progress(`← ${offer.name}`);
    void (async () => {
      try {
        const result = await client.acceptFile(offer, {
          write: async (data) => {
            let at = 0;
            while (at < data.length) at += await file.write(data.subarray(at));
          },
        }, bar);
        this.#say(
          result.sha256Ok
            ? this.#p.paint(`Saved ${offer.name} to ${path}: SHA-256 verified.`, "green")
            : this.#p.paint(`Saved ${offer.name} to ${path}, but the SHA-256 check FAILED.`, "red"),
        );
      } catch (e) {
        this.#warn(`File ${offer.name} not received: ${(e as Error).message}`);
      } finally {
        file.close();
      }
    })();
  }

  /** Asks for the current password and the new one twice; every answer stays out of chat. */
  async #passwd(): Promise<void> {
    const client = await this.#live();
    let next: string | null = null;
    let current: string | null = null;
    try {
      current = await this.term.readSecret("Current password: ");
      if (current !== null) next = await choosePassword(this.term, (t) => this.#warn(t));
    } catch (e) {
      // Ctrl-C, Ctrl-D or three mistakes: nothing changes.
      if (!(e instanceof Deno.errors.Interrupted || e instanceof CliFailure)) throw e;
      if (e instanceof CliFailure) this.#warn(`${e.message}.`);
      next = null;
    } finally {
      this.#prompt();
    }
    if (current === null || next === null) {
      this.#note("Password not changed.");
      return;
    }
    await client.changePassword(current, next);
    this.#note("Password changed. Other devices must log in again.");
  }

  /**
   * Waits for messages typed before quitting to be sent (or reported as not sent), but only
   * while the connection is up and for QUIT_WAIT_MS at most; says what did not go.
   */
  async drain(waitMs = QUIT_WAIT_MS): Promise<void> {
    if (this.#unsent > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#sending,
        this.link.down(),
        new Promise((r) => timer = setTimeout(r, waitMs)),
      ]);
      clearTimeout(timer);
    }
    this.abandon();
  }

  /** Says how many queued messages are left behind (on quitting). */
  abandon(): void {
    const n = this.#unsent;
    if (n > 0) this.#warn(`${n} message${n === 1 ? "" : "s"} not sent: no connection.`);
  }

  get currentKey(): string | null {
    return this.#current?.key ?? null;
  }
}
