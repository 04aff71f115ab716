/**
 * The inbox pump: streams a logged-in user's queued messages as PASS pushes, oldest first,
 * with at most a window of them unacknowledged. The client's cumulative ACK deletes what it
 * has and opens the window again. Messages that arrive while the user is online are offered
 * straight from memory; anything the pump could not hold is read back from the store.
 */

import type { TimerHandle } from "../clock/clock.ts";
import { invariant } from "../invariant/invariant.ts";
import { MsgType } from "../protocol/messages.ts";
import { DictPieces, encodeEntries, type Value } from "../protocol/value.ts";
import type { ChatMessage, InboxItem } from "../store/types.ts";
import type { ServerContext } from "./context.ts";
import type { Session } from "./session.ts";

/** Unacknowledged messages allowed in flight to one client. */
export const WINDOW_MESSAGES = 512;
/** Offered messages held in memory while the window is shut; past this, re-read from KV. */
const MAX_HELD = 2048;
const READ_PAGE = 256;
/**
 * After a failed read or removal, the pump tries again this much later by itself: a cluster's
 * store fails for seconds while a NATS server dies (its requests time out), and nothing else
 * may come along to wake the pump (the last message of a conversation, already poked).
 */
export const RETRY_MS = 1000;
/** Removals of acknowledged items tried this many times; a later session's ACK removes the rest. */
const REMOVE_ATTEMPTS = 5;

/**
 * A group or world message's PASS fields encoded once, for all its recipients: only the seq
 * differs. Keyed by the message object, which the recipients share, and gone with it. A private
 * message has one recipient, so it is encoded straight into the frame: a WeakMap entry costs
 * more than it saves.
 */
const encodedPass = new WeakMap<ChatMessage, Uint8Array>();

/** The PASS body of a message; `seq` 0 marks a message that needs no ACK (world room). */
export function passBody(m: ChatMessage, seq: number): Value {
  if (!m.group && !m.world) return passFields(m, { id: m.id, seq });
  let rest = encodedPass.get(m);
  if (!rest) {
    rest = encodeEntries(passFields(m, {}));
    encodedPass.set(m, rest);
  }
  return new DictPieces([{ id: m.id, seq }, rest]);
}

/** Adds the message's fields to `out`, in wire order after `id` and `seq`. */
function passFields(m: ChatMessage, out: { [key: string]: Value }): { [key: string]: Value } {
  out.time = m.time;
  out.source_username = m.from;
  out.type = m.kind;
  out.data = m.kind === "image" ? m.image! : m.text!;
  if (m.to !== undefined) out.target_username = m.to;
  if (m.group) {
    out.group_id = m.group.id;
    out.group_name = m.group.name;
  }
  if (m.world) out.world = true;
  if (m.name !== undefined) out.name = m.name;
  return out;
}

export class InboxPump {
  #sentUpTo = 0;
  #inFlight: InboxItem[] = [];
  #inFlightBytes = 0;
  #held: InboxItem[] = [];
  /** The store may hold items past #sentUpTo that are not in #held. */
  #needRead = true;
  #reading = false;
  #stopped = false;
  #overflows = 0;
  /** Pokes so far: a read that began before the last one may have missed what it announced. */
  #pokes = 0;
  /** The read retry waiting after a failed read (one at a time). */
  #retry: TimerHandle | null = null;

  constructor(
    private readonly ctx: ServerContext,
    private readonly session: Session,
    private readonly user: string,
    private readonly windowBytes: number,
  ) {}

  start(): void {
    if (!this.#reading) void this.#fill();
  }

  stop(): void {
    this.#stopped = true;
    this.#held = [];
    if (this.#retry !== null) this.session.clock.clearTimer(this.#retry);
    this.#retry = null;
  }

  /** A message for this user was just made durable. */
  offer(item: InboxItem): void {
    if (this.#stopped) return;
    if (this.#held.length >= MAX_HELD) {
      this.#held = [];
      this.#needRead = true;
      this.#overflows++;
    }
    this.#held.push(item);
    if (!this.#reading) void this.#fill();
  }

  /**
   * Something was queued for this user that only the store can put in order (a cluster: other
   * nodes queue for this user too, and an item offered straight could overtake a lower seq
   * still on its way): read the inbox back after what was sent.
   */
  poke(): void {
    if (this.#stopped) return;
    this.#needRead = true;
    this.#pokes++;
    if (!this.#reading) void this.#fill();
  }

  /** The client has every message up to `seq`; delete those and send more. */
  ack(seq: number): void {
    let n = 0;
    while (n < this.#inFlight.length && this.#inFlight[n].seq <= seq) n++;
    if (n === 0) return;
    const done = this.#inFlight.splice(0, n);
    for (const item of done) this.#inFlightBytes -= item.size;
    invariant(
      this.#inFlightBytes >= 0 && (this.#inFlight.length > 0 || this.#inFlightBytes === 0),
      "the bytes in flight are those of the items in flight",
    );
    this.#remove(done, 1);
    if (!this.#reading) void this.#fill();
  }

  /**
   * Deletes acknowledged items, again a while later if the store fails: left in the store, they
   * would count against the inbox's limits and come again with the user's next session. Retried
   * after the pump stops too: the client has them. Removing an item twice counts it out once.
   */
  #remove(items: InboxItem[], attempt: number): void {
    this.ctx.store.inbox.remove(this.user, items).catch((e) => {
      this.ctx.log.error("inbox.remove_failed", {
        user: this.user,
        attempt,
        error: (e as Error).message,
      });
      if (attempt >= REMOVE_ATTEMPTS) return;
      this.session.clock.setTimer(() => this.#remove(items, attempt + 1), RETRY_MS);
    });
  }

  get pending(): number {
    return this.#inFlight.length;
  }

  #room(): number {
    if (this.#inFlight.length === 0) return WINDOW_MESSAGES;
    if (this.#inFlightBytes >= this.windowBytes) return 0;
    return WINDOW_MESSAGES - this.#inFlight.length;
  }

  /** Bytes that may still go out; with nothing in flight, one item of any size may. */
  #roomBytes(): number {
    return this.#inFlight.length === 0 ? 1 : Math.max(1, this.windowBytes - this.#inFlightBytes);
  }

  /** Items go out in seq order, each once: the client's ACK is cumulative. */
  #push(item: InboxItem): void {
    invariant(item.seq > this.#sentUpTo, "the pump sends in seq order");
    this.session.push(MsgType.PASS, passBody(item.message, item.seq));
    this.ctx.metrics.messageOut(item.message);
    this.#inFlight.push(item);
    this.#inFlightBytes += item.size;
    this.#sentUpTo = item.seq;
  }

  async #fill(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      while (!this.#stopped && !this.session.closed && this.#room() > 0) {
        if (this.#needRead) {
          const overflowBefore = this.#overflows;
          const pokesBefore = this.#pokes;
          const caughtUp = () => this.#overflows === overflowBefore && this.#pokes === pokesBefore;
          // The counts are kept in memory: an empty inbox needs no read at all. A poke says
          // there is something: straight to the read.
          if (pokesBefore === 0 && (await this.ctx.store.inbox.stats(this.user)).count === 0) {
            if (caughtUp()) this.#needRead = false;
            continue;
          }
          // Rows still waiting in the committer are not in the store yet: commit them first.
          await this.ctx.store.inbox.settle();
          if (this.#stopped) return;
          const items = await this.ctx.store.inbox.read(
            this.user,
            this.#sentUpTo,
            Math.min(READ_PAGE, this.#room()),
            this.#roomBytes(),
          );
          if (this.#stopped) return;
          for (const item of items) if (item.seq > this.#sentUpTo) this.#push(item);
          // Caught up, unless offers were dropped (and so must be read back) meanwhile.
          if (items.length === 0 && caughtUp()) this.#needRead = false;
          continue;
        }
        const next = this.#held[0];
        if (!next) return;
        if (this.#inFlight.length > 0 && next.size > this.#roomBytes()) return;
        this.#held.shift();
        if (next.seq > this.#sentUpTo) this.#push(next);
      }
    } catch (e) {
      // A stopped pump drops what it read: a kicked session's last ACK may have deleted a
      // shared blob under its read, which is no failure.
      if (this.#stopped) return;
      this.ctx.log.error("inbox.read_failed", { user: this.user, error: (e as Error).message });
      this.#retryLater();
    } finally {
      this.#reading = false;
    }
  }

  /** Reads again after RETRY_MS, unless something else has woken the pump by then. */
  #retryLater(): void {
    if (this.#retry !== null) return;
    this.#retry = this.session.clock.setTimer(() => {
      this.#retry = null;
      if (this.#stopped || this.session.closed) return;
      this.#needRead = true;
      if (!this.#reading) void this.#fill();
    }, RETRY_MS);
  }
}
