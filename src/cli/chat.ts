/**
 * The interactive chat session: slash commands, the current conversation, incoming messages
 * and notifications printed above the input line, local history, files and images.
 */

import { basename } from "node:path";
import type { Invitation, Target } from "../client/client.ts";
import type { FileSource } from "../client/files.ts";
import type { Link } from "../client/link.ts";
import {
  DEFAULT_LIMITS,
  fileProblem,
  imageProblem,
  maxImageBytes,
  type ServerLimits,
  textProblem,
} from "../client/outgoing.ts";
import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import type { Message } from "../protocol/message_codec.ts";
import { MsgType } from "../protocol/messages.ts";
import type { History, HistoryEntry } from "./history.ts";
import { AUTOSAVE_BYTES, Downloads, HELD_BYTES, type Kept, type Receiving } from "./downloads.ts";
import { choosePassword, CliFailure } from "./login.ts";
import { MAX_AHEAD } from "./input.ts";
import { localProblem, readImageFile } from "./local_file.ts";
import { downloadsDir } from "./paths.ts";
import { clock, formatEntry, formatSize, Painter, progressBar } from "./render.ts";
import { sentence, shown, visible, visibleLines } from "../terminal/safe_text.ts";
import type { Terminal } from "../terminal/terminal.ts";

export const CHAT_HELP =
  `Commands (plain text goes to the current conversation; end a line with \\ to continue it):
  /to NAME | /to #ID | /world   open a conversation with a user, a group or the world room
  /recent                       conversations by last activity, with the last message
  /history [N]                  the last N messages of the current conversation (default 20)
  /friends  /groups             your friends (with who is online) and your groups
  /add NAME  /remove NAME       ask someone to be your friend (or accept their request);
                                remove a friend (or decline or withdraw a request)
  /block NAME  /unblock NAME    stop or allow all contact with someone; /blocks lists them
  /requests                     friend requests and group invitations waiting for you
  /join #ID  /decline #ID       accept or decline a group invitation
  /create NAME [MEMBER...]      create a group ("quotes" for a name with spaces)
  /invite NAME [#ID]            invite someone to a group (the current one by default)
  /members [#ID]  /leave [#ID]  list a group's members; leave a group
  /who [PAGE]                   who is online
  /image PATH                   send an image to the current conversation
  /file PATH                    offer a file to the current user
  /accept [ID]  /deny [ID]      answer a file offer (the latest by default)
  /save [N]                     save image N that was not saved automatically (the latest)
  /passwd                       change your password
  /logout [all]                 log out (this device, or all: every device) and quit
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
/** On Ctrl-C, how long the messages being recorded may hold the client: the user wants out. */
const INTERRUPT_WAIT_MS = 1000;
/** How long a quitting client waits for the server to close after its own last bytes. */
const FINISH_MS = 1000;

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
function closeQuietly(file: Deno.FsFile): void {
  try {
    file.close();
  } catch {
    // closed already
  }
}

/** A refusal before sending, said once ("Nothing to send: …" says it already). */
function notSent(problem: string): string {
  return problem.startsWith("Nothing to send") ? problem : `Not sent: ${problem}`;
}

/** Splits a command line into words, honouring "double quotes". */
export function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/**
 * Whether nothing more is read until the line was handled: /passwd reads the terminal itself, and
 * after a line that ends the session nothing more is wanted.
 */
export function waitsForHandling(line: string): boolean {
  return ["/passwd", "/quit", "/exit", "/logout"].includes(words(line)[0] ?? "");
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
  /** Lower-cased names of friends: their images are saved without asking. */
  #friends = new Set<string>();
  #budgetTold = false;
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
    private readonly downloads = new Downloads(downloadsDir(), AUTOSAVE_BYTES),
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
      case MsgType.PASS: {
        // Once quitting, a message is left on the server for next time, untouched; one already
        // being handled is tracked, so that quitting finishes it: recorded, noted, acknowledged.
        if (this.#quitting) return;
        const handling = this.#incoming(b);
        this.#handling.add(handling);
        try {
          return await handling;
        } finally {
          this.#handling.delete(handling);
        }
      }
      case MsgType.NEW_FRIEND:
        this.#friend(b.username, true);
        return this.#note(shown`${b.username} accepted: you are friends now.`);
      case MsgType.FRIEND_REQUEST:
        return this.#note(
          shown`${b.username} asks to be your friend: /add ${b.username} to accept, ` +
            shown`/remove ${b.username} to decline, /block ${b.username} to stop them.`,
        );
      case MsgType.G_INVITATION:
        return this.#note(
          shown`${b.source_name} invites you to #${b.group_id} ${b.group_name} (${
            (b.group_members as string[]).join(", ")
          }): /join #${b.group_id} or /decline #${b.group_id}.`,
        );
      case MsgType.FRIEND_REMOVED:
        this.#friend(b.username, false);
        return this.#note(shown`${b.username} removed you from their friends.`);
      case MsgType.FRIEND_ONLINE:
        return this.#note(shown`${b.username} is online.`);
      case MsgType.FRIEND_OFFLINE:
        return this.#note(shown`${b.username} went offline.`);
      case MsgType.ADD_TO_G:
        this.#groups.set(b.group_id as number, b.group_name as string);
        return this.#note(
          shown`${b.source_name} added you to #${b.group_id} ${b.group_name} (${
            (b.group_members as string[]).join(", ")
          }).`,
        );
      case MsgType.NEW_MEMBER:
        return this.#note(
          shown`${b.source_name} added ${b.username} to #${b.group_id} ${b.group_name}.`,
        );
      case MsgType.MEMBER_LEFT:
        return this.#note(shown`${b.username} left #${b.group_id} ${b.group_name}.`);
      case MsgType.FILE_INCOMING: {
        const offer = b as unknown as Offer;
        this.#offers.set(offer.transfer_id, offer);
        return this.#note(
          shown`${offer.source_username} offers the file "${offer.name}" (${
            formatSize(offer.size)
          }). /accept ${offer.transfer_id} or /deny ${offer.transfer_id}`,
        );
      }
      case MsgType.FILE_CANCELLED:
        this.#offers.delete(b.transfer_id as number);
        return this.#warn(shown`File transfer ${b.transfer_id} stopped: ${b.reason}`);
      case MsgType.KICK:
        return this.#warn(shown`${b.reason}. This session has ended.`);
      case MsgType.GENERAL_ERROR:
        return this.#warn(shown`Server: ${b.message}`);
    }
  }

  async #initialize(b: Body): Promise<void> {
    const friends = b.friends as { username: string; online: boolean }[];
    const groups = b.groups as { group_id: number; group_name: string }[];
    for (const g of groups) this.#groups.set(g.group_id, g.group_name);
    this.#friends = new Set(friends.map((f) => f.username.toLowerCase()));
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
        (online.length ? shown` (online: ${online.join(", ")})` : "") +
        `, ${groups.length} group${groups.length === 1 ? "" : "s"}.`,
    );
    this.#waiting(b);
    if (this.#backlog === 0) this.#prompt();
  }

  /** Says what waits for the user's answer at login: friend requests, group invitations. */
  #waiting(b: Body): void {
    const requests = (b.requests as string[] | undefined) ?? [];
    const invitations = (b.invitations as Invitation[] | undefined) ?? [];
    if (requests.length === 0 && invitations.length === 0) return;
    const parts = [];
    if (requests.length) parts.push(shown`friend requests from ${requests.join(", ")}`);
    if (invitations.length) {
      parts.push(
        shown`invitations to ${
          invitations.map((i) => `#${i.group_id} ${i.group_name}`).join(", ")
        }`,
      );
    }
    this.#note(`Waiting for your answer: ${parts.join("; ")}. /requests shows them.`);
  }

  #conversationOf(b: Body): Conversation {
    if (b.world) return WORLD;
    if (typeof b.group_id === "number") {
      const name = (b.group_name as string | undefined) ?? this.#groups.get(b.group_id) ?? "";
      return {
        key: `#${b.group_id}`,
        label: `#${b.group_id} ${visible(name)}`.trim(),
        target: { group: b.group_id },
      };
    }
    const other = b.source_username as string;
    return {
      key: `@${other.toLowerCase()}`,
      label: `@${visible(other)}`,
      target: { user: other },
    };
  }

  /**
   * A message: recorded, shown, then acknowledged. Whatever goes wrong with one message (an
   * image that cannot be written, a history file that cannot grow) is reported and the message
   * still acknowledged, so that nothing is redelivered, and fails, at every start.
   */
  async #incoming(b: Body): Promise<void> {
    const seq = typeof b.seq === "number" ? b.seq : 0;
    // Backlog messages are counted in a summary; only the open conversation's are shown.
    const fromBacklog = seq > 0 && this.#backlog > 0;
    let conv: Conversation | null = null;
    // A backlog message of the open conversation is shown, so it is not counted as well.
    let counted = fromBacklog;
    if (this.history.recorded(b.source_username as string, b.id as Uint8Array)) {
      // Recorded before its ACK was lost (the client died in between): acknowledged, not again.
      if (seq > 0) this.link.ack(seq);
      if (fromBacklog) this.#backlogDone();
      return;
    }
    try {
      conv = this.#conversationOf(b);
      const elsewhere = this.#current?.key !== conv.key;
      counted = fromBacklog && elsewhere;
      const entry = await this.#record(conv, b, elsewhere);
      await this.history.remember(b.source_username as string, b.id as Uint8Array).catch((e) =>
        this.#warn(shown`Could not note message ids in local history: ${(e as Error).message}`)
      );
      if ((!fromBacklog || !elsewhere) && !this.#listed(conv, entry)) {
        this.#say(formatEntry(this.#p, conv.label, entry, !fromBacklog && elsewhere));
      }
    } catch (e) {
      this.#warn(
        shown`A message from ${b.source_username} could not be shown: ${(e as Error).message}`,
      );
    } finally {
      if (seq > 0) this.link.ack(seq);
    }
    if (counted) {
      const label = conv?.label ?? "?";
      this.#arrived.set(label, (this.#arrived.get(label) ?? 0) + 1);
    }
    if (fromBacklog) this.#backlogDone();
  }

  /** One message of the login backlog handled: after the last, what arrived elsewhere. */
  #backlogDone(): void {
    if (--this.#backlog > 0) return;
    if (this.#arrived.size > 0) this.#summary();
    else this.#prompt();
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

  /** Keeps a message in local history (an image on disk, or held) and returns its entry. */
  async #record(conv: Conversation, b: Body, unread: boolean): Promise<HistoryEntry> {
    const entry: HistoryEntry = {
      id: (b.id as Uint8Array).toHex(),
      from: b.source_username as string,
      time: (b.time as Date).toISOString(),
      kind: b.type === "image" ? "image" : "text",
      text: b.type === "image" ? "" : String(b.data),
    };
    if (b.type === "image") {
      const data = b.data as Uint8Array;
      const name = (b.name as string | undefined) || `${entry.id.slice(0, 8)}.img`;
      const friend = entry.from.toLowerCase() === this.me.toLowerCase() ||
        this.#friends.has(entry.from.toLowerCase());
      const kept = await this.downloads.image(entry.from, name, data, friend);
      if ("saved" in kept) entry.path = kept.saved;
      entry.text = `${visible(name)} (${formatSize(data.length)}) ${
        this.#keptText(visible(entry.from), kept)
      }`;
    }
    // The message is shown and acknowledged even if local history cannot take it.
    await this.history.append(conv.key, conv.label, entry, unread).catch((e) =>
      this.#warn(shown`Could not write local history: ${(e as Error).message}`)
    );
    return entry;
  }

  #keptText(from: string, kept: Kept): string {
    if ("saved" in kept) return `saved to ${kept.saved}`;
    const why = "held" in kept ? kept.why : kept.dropped;
    let text = why === "stranger"
      ? `not saved: ${from} is not your friend`
      : why === "budget"
      ? `not saved: this session's ${
        formatSize(this.downloads.budget)
      } for saving images without asking is used up`
      : `could not be saved: ${visible(kept.error)}`;
    if (why === "budget" && !this.#budgetTold) {
      this.#budgetTold = true;
      this.#note(
        `Images are no longer saved without asking: this session saved ${
          formatSize(this.downloads.spent)
        } (PARLEY_AUTOSAVE_MIB sets the budget).`,
      );
    }
    text += "held" in kept
      ? `; /save ${kept.held} to keep it`
      : `, and too large to hold until /save`;
    return text;
  }

  #friend(name: unknown, yes: boolean): void {
    if (typeof name !== "string") return;
    if (yes) this.#friends.add(name.toLowerCase());
    else this.#friends.delete(name.toLowerCase());
  }

  async #saveHeld(arg: string | undefined): Promise<void> {
    const n = arg !== undefined ? Number(arg.replace(/^#/, "")) : this.downloads.held().at(-1);
    if (n === undefined) throw new ParleyError(9, "No image is waiting to be saved");
    if (!Number.isInteger(n) || !this.downloads.held().includes(n)) {
      throw new ParleyError(
        9,
        `Image ${arg} is not waiting to be saved (unsaved images are kept until you quit, up to ${
          formatSize(HELD_BYTES)
        })`,
      );
    }
    let saved;
    try {
      saved = await this.downloads.saveHeld(n);
    } catch (e) {
      // Still held: the user can free the folder and try again.
      return this.#warn(shown`Could not save image ${n}: ${(e as Error).message}`);
    }
    this.#note(
      shown`Saved ${saved.name} from ${saved.from} (${formatSize(saved.size)}) to ${saved.path}.`,
    );
  }

  // Outgoing.

  /**
   * Handles one line, entered at `typedAt` (performance.now()); returns false when the session
   * should end. Lines are handled in the order typed, each after the one before is done, so a
   * line typed while a conversation switch waits goes to the conversation switched to. If the
   * switch fails, no conversation stays open, and nothing typed after it is sent until one is
   * opened: it was meant for the conversation that did not open (a private line must never go to
   * the world room instead).
   */
  async handle(line: string, typedAt = performance.now()): Promise<boolean> {
    const [command, ...args] = line.startsWith("/") ? words(line) : [];
    const switching = command !== undefined && this.#switches(command, args);
    const held = this.#held;
    if (held) {
      if (switching || typedAt >= held.failedAt) this.#held = null;
      else if (command === undefined || command === "/image" || command === "/file") {
        if (line.trim() !== "") this.#notSent(line, held.command);
        return true;
      } else if (this.#usesCurrent(command, args)) {
        this.#warn(shown`Not done: ${line} (the ${held.command} before it failed).`);
        return true;
      }
    }
    if (command === undefined) {
      if (line.trim() === "") return true;
      this.#send(line);
      // The read-ahead waits while this does: a file piped in is read as fast as it is sent, not
      // into memory whole.
      if (this.#unsent >= MAX_AHEAD) await this.#sending;
      return true;
    }
    const epoch = this.#switchEpoch;
    try {
      // /passwd waits for the user's typing; every other command gets an answer in time, so
      // that a server that stopped answering cannot keep /quit from being read.
      if (command === "/passwd") return await this.#command(command, args);
      return await withDeadline(this.#command(command, args), COMMAND_TIMEOUT_MS, command);
    } catch (e) {
      if (switching) {
        // A switch that answers after its deadline must not open the conversation any more.
        if (this.#switchEpoch === epoch) this.#switchEpoch++;
      }
      // Sentences only: the wire codes are for programs.
      if (e instanceof ParleyError) this.#warn(sentence(e.message));
      else if (e instanceof Deno.errors.NotFound) {
        this.#warn(shown`No such file: ${(e as Error).message}`);
      } else if (e instanceof Error && e.name === "ConnectionClosedError") {
        this.#warn(sentence(e.message));
      } else throw e;
      return true;
    } finally {
      if (switching && this.#switchEpoch !== epoch) {
        // No conversation stays open: the next line, however soon it was typed, was meant for
        // the one that did not open, not for the one open before.
        this.#current = null;
        this.#prompt();
        this.#say("-- No conversation is open now: /to NAME, /to #ID or /world.");
        // Stamped once the failure is on the screen: lines typed from then on were typed seeing it.
        this.#held = { command, failedAt: performance.now() };
      }
    }
  }

  /** The switch that failed last, while lines typed before its failure was shown are handled. */
  #held: { command: string; failedAt: number } | null = null;
  /** Counts failed switches: a switch opens its conversation only if none failed meanwhile. */
  #switchEpoch = 0;

  /** Whether the command changes the current conversation (when it succeeds). */
  #switches(command: string, args: string[]): boolean {
    if (["/to", "/open", "/world", "/create"].includes(command)) return true;
    // Leaving the open group closes it; leaving another one does not.
    return command === "/leave" && this.#current !== null && "group" in this.#current.target &&
      (args[0] === undefined || this.#current.key === `#${args[0].replace(/^#/, "")}`);
  }

  /** Whether the command acts on the current conversation when it names none. */
  #usesCurrent(command: string, args: string[]): boolean {
    if (command === "/history") return true;
    if (command === "/invite") return args[1] === undefined;
    return (command === "/members" || command === "/leave") && args[0] === undefined;
  }

  /** Says, with the whole text to copy, that a line typed after a failed switch was not sent. */
  #notSent(line: string, failed: string): void {
    this.#warn(`Not sent: "${visibleLines(line)}" (the ${failed} before it failed).`);
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
      case "/logout": {
        if (args[0] !== undefined && args[0] !== "all") {
          throw new ParleyError(9, "Usage: /logout, or /logout all for every device");
        }
        await (await this.#live()).logout(args[0] === "all");
        this.#say(`Logged out ${this.me}${args[0] === "all" ? " on every device" : ""}.`);
        return false;
      }
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
            ? friends.map((f) =>
              `  ${f.online ? this.#p.paint("●", "green") : "○"} ${visible(f.username)}`
            )
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
            ? groups.map((g) => shown`  #${g.group_id} ${g.group_name}`).join("\n")
            : "No groups yet. Create one with /create NAME [MEMBER...].",
        );
        return true;
      }
      case "/add": {
        if (!args[0]) throw new ParleyError(9, "Usage: /add NAME");
        const r = await (await this.#live()).addFriend(args[0]);
        if (!r.pending) this.#friend(r.username, true);
        this.#note(
          r.pending
            ? shown`Asked ${r.username} to be your friend; you are friends once they add you too.`
            : shown`${r.username} is now your friend${r.online ? " (online)" : ""}.`,
        );
        return true;
      }
      case "/remove": {
        if (!args[0]) throw new ParleyError(9, "Usage: /remove NAME");
        await (await this.#live()).removeFriend(args[0]);
        this.#friend(args[0], false);
        this.#note(`${args[0]} is no longer your friend.`);
        return true;
      }
      case "/create": {
        if (!args[0]) throw new ParleyError(9, "Usage: /create NAME [MEMBER...]");
        const epoch = this.#switchEpoch;
        const g = await (await this.#live()).createGroup(args[0], args.slice(1));
        this.#groups.set(g.group_id, g.group_name);
        this.#note(
          shown`Created #${g.group_id} ${g.group_name} with ${g.group_members.join(", ")}.`,
        );
        if (g.invited?.length) {
          this.#note(shown`Invited ${g.invited.join(", ")}: they join once they accept.`);
        }
        // Answered after its deadline, when the failure was shown and no conversation stays open
        // (or another was opened since): made, and not opened.
        if (epoch === this.#switchEpoch) await this.#open(`#${g.group_id}`);
        return true;
      }
      case "/invite": {
        if (!args[0]) throw new ParleyError(9, "Usage: /invite NAME [#ID]");
        const g = await (await this.#live()).invite(this.#group(args[1]), args[0]);
        this.#note(
          g.pending
            ? shown`Invited ${
              args[0]
            } to #${g.group_id} ${g.group_name}; they join once they accept.`
            : shown`${args[0]} is now in #${g.group_id} ${g.group_name} (${
              g.group_members.join(", ")
            }).`,
        );
        return true;
      }
      case "/members": {
        const id = this.#group(args[0]);
        const members = await (await this.#live()).members(id);
        this.#say(
          members.map((m) =>
            `  ${m.online ? this.#p.paint("●", "green") : "○"} ${visible(m.username)}`
          )
            .join("\n"),
        );
        return true;
      }
      case "/leave": {
        const id = this.#group(args[0]);
        await (await this.#live()).leaveGroup(id);
        this.#note(shown`You left #${id} ${this.#groups.get(id) ?? ""}.`);
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
            r.users.map((u) => visible(u)).join(", ")
          }`,
        );
        return true;
      }
      case "/image":
        await this.#sendImage(args.join(" "));
        return true;
      case "/file":
        await this.#sendFile(args.join(" "));
        return true;
      case "/save":
        await this.#saveHeld(args[0]);
        return true;
      case "/accept":
      case "/deny":
        await this.#answer(command === "/accept", args[0]);
        return true;
      case "/passwd":
        await this.#passwd();
        return true;
      default: {
        if (await this.#consentCommand(command, args)) return true;
        this.#warn(`Unknown command ${command}. Type /help for the list.`);
        return true;
      }
    }
  }

  /** Blocks, friend requests and group invitations; false for a command that is not one. */
  async #consentCommand(command: string, args: string[]): Promise<boolean> {
    switch (command) {
      case "/block": {
        if (!args[0]) throw new ParleyError(9, "Usage: /block NAME");
        const name = await (await this.#live()).block(args[0]);
        this.#note(
          shown`Blocked ${name}: no messages, requests, invitations, files or presence either way.`,
        );
        return true;
      }
      case "/unblock": {
        if (!args[0]) throw new ParleyError(9, "Usage: /unblock NAME");
        await (await this.#live()).unblock(args[0]);
        this.#note(shown`Unblocked ${args[0]}.`);
        return true;
      }
      case "/blocks": {
        const blocked = await (await this.#live()).blocks();
        this.#say(
          blocked.length ? shown`Blocked: ${blocked.join(", ")}` : "You have blocked no one.",
        );
        return true;
      }
      case "/requests": {
        const c = await this.#live();
        const [friends, invitations] = await Promise.all([c.friendRequests(), c.invitations()]);
        const lines = [
          ...friends.requests.map((n) =>
            shown`  ${n} asks to be your friend (/add ${n}, /remove ${n})`
          ),
          ...friends.requested.map((n) => shown`  you asked ${n} to be your friend`),
          ...invitations.map((i) =>
            shown`  ${i.source_name} invites you to #${i.group_id} ${i.group_name} ` +
            `(/join #${i.group_id}, /decline #${i.group_id})`
          ),
        ];
        this.#say(lines.length ? lines.join("\n") : "Nothing is waiting for your answer.");
        return true;
      }
      case "/join": {
        if (!args[0]) throw new ParleyError(9, "Usage: /join #ID");
        const g = await (await this.#live()).joinGroup(this.#group(args[0]));
        this.#groups.set(g.group_id, g.group_name);
        this.#note(
          shown`You joined #${g.group_id} ${g.group_name} (${g.group_members.join(", ")}).`,
        );
        return true;
      }
      case "/decline": {
        if (!args[0]) throw new ParleyError(9, "Usage: /decline #ID");
        const id = this.#group(args[0]);
        await (await this.#live()).declineGroup(id);
        this.#note(`Declined the invitation to #${id}.`);
        return true;
      }
    }
    return false;
  }

  async #open(what: string): Promise<void> {
    const epoch = this.#switchEpoch;
    let conv: Conversation;
    if (what === "world" || what === "*world") conv = WORLD;
    else if (what.startsWith("#")) {
      const id = this.#group(what);
      // Like /to NAME: no conversation with a group you are not in (its history still opens).
      if (!this.#groups.has(id) && !this.history.recent().some((c) => c.key === `#${id}`)) {
        throw new ParleyError(
          ErrorCode.NOT_A_MEMBER,
          `You are not in a group #${id}; /groups lists yours`,
        );
      }
      const name = this.#groups.get(id) ?? "";
      conv = { key: `#${id}`, label: `#${id} ${visible(name)}`.trim(), target: { group: id } };
    } else {
      const name = await this.#existing(what.replace(/^@/, ""));
      conv = { key: `@${name.toLowerCase()}`, label: `@${visible(name)}`, target: { user: name } };
    }
    // The answer came after the deadline, and the failure was shown: nothing opens now.
    if (epoch !== this.#switchEpoch) return;
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
        const preview = visible(c.last.text.split("\n")[0], 60);
        return `  ${this.#p.paint(visible(c.label), "bold")}${unread}  ${clock(c.last.time)} <${
          visible(c.last.from)
        }> ${preview}`;
      }).join("\n"),
    );
  }

  async #showHistory(n: number): Promise<void> {
    if (!this.#current) {
      throw new ParleyError(9, "Open a conversation first: /to NAME, /to #ID or /world");
    }
    const conv = this.#current;
    const entries = await this.history.last(conv.key, n);
    this.#say(this.#p.paint(`── ${conv.label} ──`, "bold"));
    for (const e of entries) this.#say(formatEntry(this.#p, conv.label, e, false));
    this.#listedIds = { key: conv.key, ids: new Set(entries.map((e) => e.id)) };
  }

  /**
   * Whether `entry` was in the history just listed for the open conversation: a message recorded
   * while the listing read the file is in it, and is not printed a second time as it arrives.
   */
  #listed(conv: Conversation, entry: HistoryEntry): boolean {
    const listed = this.#listedIds;
    return listed !== null && listed.key === conv.key && this.#current?.key === conv.key &&
      listed.ids.has(entry.id);
  }

  /** The ids of the conversation history listed last, while that conversation is open. */
  #listedIds: { key: string; ids: Set<string> } | null = null;

  /** Sends in the order typed; a dropped connection delays, it does not lose. */
  #send(text: string): void {
    const conv = this.#current;
    if (!conv) {
      this.#warn(
        `Not sent: "${visibleLines(text)}" (no conversation is open: /to NAME, /to #ID or /world).`,
      );
      return;
    }
    const problem = textProblem(text, this.#limits);
    if (problem) {
      this.#warn(`${notSent(problem)}.`);
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
        this.#warn(`Not sent to ${conv.label}: ${sentence((e as Error).message)}.`);
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
    // Our own world messages come back in the backlog after a reconnect: known, not shown twice.
    this.link.seen.first(this.me, id);
    await this.history.append(conv.key, conv.label, entry, false);
    await this.history.remember(this.me, id).catch((e) =>
      this.#warn(shown`Could not note message ids in local history: ${(e as Error).message}`)
    );
    if (!this.#listed(conv, entry)) {
      this.#say(formatEntry(this.#p, conv.label, entry, this.#current?.key !== conv.key));
    }
    if (skipped?.length) {
      this.#warn(shown`Not delivered to ${skipped.join(", ")}: their queue is full.`);
    }
  }

  async #sendImage(path: string): Promise<void> {
    const conv = this.#current;
    if (!conv) throw new ParleyError(9, "Open a conversation first: /to NAME, /to #ID or /world");
    if (!path) throw new ParleyError(9, "Usage: /image PATH");
    if ("world" in conv.target) {
      throw new ParleyError(9, "The world room takes text; send images to friends or groups");
    }
    const read = await readImageFile(path, maxImageBytes(this.#limits));
    if ("problem" in read) throw new ParleyError(ErrorCode.BAD_REQUEST, read.problem);
    const data = read.data;
    const name = basename(path);
    const problem = imageProblem(data, name, this.#limits, read.size);
    if (problem) throw new ParleyError(ErrorCode.TOO_LARGE, notSent(problem));
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

  /** Checks the file and offers it; the transfer runs in the background. */
  async #sendFile(path: string): Promise<void> {
    const conv = this.#current;
    if (!conv || !("user" in conv.target)) {
      throw new ParleyError(9, "Files go to one person: open a conversation with /to NAME first");
    }
    if (!path) throw new ParleyError(9, "Usage: /file PATH");
    const to = conv.target.user;
    const name = basename(path);
    // Refused before anything is offered: a folder, a device (/dev/null), an empty file.
    const info = await Deno.stat(path).catch((e) => {
      throw new ParleyError(ErrorCode.BAD_REQUEST, localProblem(path, e));
    });
    if (info.isDirectory) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, `${path} is a folder, not a file`);
    }
    if (!info.isFile) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, `${path} is not a file (a device or a pipe)`);
    }
    if (info.size === 0) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, `Nothing to send: "${name}" is empty`);
    }
    const tooBig = fileProblem(info.size, name, this.#limits);
    if (tooBig) throw new ParleyError(ErrorCode.TOO_LARGE, `Not sent: ${tooBig}`);
    const file = await Deno.open(path, { read: true }).catch((e) => {
      throw new ParleyError(ErrorCode.BAD_REQUEST, localProblem(path, e));
    });
    // Runs in the background so that chat goes on during the transfer.
    void (async () => {
      try {
        const size = info.size;
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
        this.#note(`Offering ${name} (${formatSize(size)}) to ${to}…`);
        const client = await this.#live();
        const bar = this.#progress(`→ ${name}`);
        const result = await client.sendFile(to, name, source, bar);
        this.#say(
          result.sha256Ok
            ? this.#p.paint(`Sent ${name} to ${to}: SHA-256 verified.`, "green")
            : this.#p.paint(`Sent ${name} to ${to}, but the SHA-256 check FAILED.`, "red"),
        );
      } catch (e) {
        this.#warn(shown`File not sent: ${(e as Error).message}`);
      } finally {
        file.close();
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
    let drawn = -1;
    return (done, total) => {
      const step = total === 0 ? steps : Math.floor((done / total) * steps);
      if (step === drawn) return;
      drawn = step;
      this.term.update(
        key,
        this.#p.paint(`-- ${visible(label)} ${progressBar(done, total)}`, "dim"),
      );
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
      this.#note(shown`Declined "${offer.name}" from ${offer.source_username}.`);
      return;
    }
    let receiving: Receiving;
    try {
      receiving = await this.downloads.receive(offer.source_username, offer.name);
    } catch (e) {
      await client.denyFile(offer.transfer_id).catch(() => {});
      return this.#warn(
        shown`Cannot save "${offer.name}", so it was declined: ${(e as Error).message}`,
      );
    }
    const { file } = receiving;
    const bar = this.#progress(shown`← ${offer.name}`);
    this.#receiving.add(receiving);
    void (async () => {
      // The bytes go to NAME.part; only a whole file with the right SHA-256 gets its name.
      let kept = false;
      try {
        const result = await client.acceptFile(offer, {
          write: async (data) => {
            let at = 0;
            while (at < data.length) at += await file.write(data.subarray(at));
          },
        }, bar);
        file.close();
        if (!result.sha256Ok) {
          await receiving.discard();
          this.#warn(
            shown`${offer.name} arrived, but its SHA-256 check FAILED: not saved (removed).`,
          );
          return;
        }
        const path = await receiving.finish();
        kept = true;
        this.#say(
          this.#p.paint(shown`Saved ${offer.name} to ${path}: SHA-256 verified.`, "green"),
        );
      } catch (e) {
        closeQuietly(file);
        await receiving.discard();
        // On quitting, #discardReceiving has said it already.
        if (this.#quitting) return;
        this.#warn(
          shown`File ${offer.name} not received: ${(e as Error).message}. ` +
            "The part received was removed.",
        );
      } finally {
        closeQuietly(file);
        if (!kept) await receiving.discard();
        this.#receiving.delete(receiving);
      }
    })();
  }

  /** Files being received: on quitting, their parts go (the process ends before their own end). */
  readonly #receiving = new Set<Receiving>();

  async #discardReceiving(): Promise<void> {
    for (const r of this.#receiving) {
      closeQuietly(r.file);
      await r.discard();
      this.#warn(shown`${basename(r.part)} was not finished: the part received was removed.`);
    }
    this.#receiving.clear();
  }

  /** Asks for the current password and the new one twice; every answer stays out of chat. */
  async #passwd(): Promise<void> {
    const client = await this.#live();
    let next: string | null = null;
    let current: string | null = null;
    if (this.term.dropTypedAhead()) {
      this.#warn("What was typed right after /passwd was dropped, not taken as your password.");
    }
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
    this.#quitting = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((r) => timer = setTimeout(r, waitMs));
    if (this.#unsent > 0) await Promise.race([this.#sending, this.link.down(), late]);
    await this.#finishHandling(late, FINISH_MS);
    clearTimeout(timer);
    await this.#discardReceiving();
    this.abandon();
  }

  /**
   * Ctrl-C: what was typed and not yet sent stays unsent (and is said to), but the messages
   * being recorded are finished, for INTERRUPT_WAIT_MS at most.
   */
  async interrupt(waitMs = INTERRUPT_WAIT_MS): Promise<void> {
    this.#quitting = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((r) => timer = setTimeout(r, waitMs));
    await this.#finishHandling(late, Math.min(waitMs, FINISH_MS));
    clearTimeout(timer);
    await this.#discardReceiving();
    this.abandon();
  }

  /**
   * A message being recorded when the user quit is finished and acknowledged: left half done,
   * it was in the history but not among the ids seen, and its redelivery was stored again. Then
   * the connection ends gracefully, so that the acknowledgements are not lost to a reset.
   */
  async #finishHandling(late: Promise<unknown>, waitMs: number): Promise<void> {
    if (this.#handling.size > 0) {
      await Promise.race([Promise.allSettled([...this.#handling]), late]);
    }
    await Promise.race([this.link.finish(waitMs), late]);
  }

  /** Says how many queued messages are left behind (on quitting). */
  abandon(): void {
    const n = this.#unsent;
    if (n > 0) this.#warn(`${n} message${n === 1 ? "" : "s"} not sent: no connection.`);
  }

  /** Incoming messages being recorded and shown. */
  readonly #handling = new Set<Promise<void>>();
  /** Set by drain: messages arriving from then on are not handled. */
  #quitting = false;

  get currentKey(): string | null {
    return this.#current?.key ?? null;
  }
}
