/**
 * The hub seam: who is online and which session serves each user. Handlers use only this
 * interface. `LocalHub` is one process's memory; `ClusterHub` (cluster/cluster_hub.ts) adds the
 * users of the other nodes and routes pushes to them over NATS.
 */

import { MsgType } from "../protocol/messages.ts";
import type { Value } from "../protocol/value.ts";
import type { ChatMessage, InboxItem, NamedUser } from "../store/types.ts";
import { passBody } from "./delivery.ts";
import type { Session } from "./session.ts";

export interface Hub {
  /** Several nodes share the store: another node may revoke what this one just checked. */
  readonly distributed: boolean;
  /** Makes `session` the user's session on this node; returns the one it replaces, if any. */
  attach(user: string, session: Session): Session | undefined;
  /** Removes `session` if it is still the user's session; true if it was. */
  detach(user: string, session: Session): boolean;
  /** The user's session on this node. */
  sessionOf(user: string): Session | undefined;
  /** Whether the user has a session on any node. */
  isOnline(user: string): boolean;
  /** Pushes to the user's session, on whichever node it is; nothing if the user is offline. */
  push(user: string, type: number, body: Value): void;
  /** Everyone online on any node (WHO). */
  online(): Iterable<NamedUser>;
  /** A world message to every logged-in session on every node but `except` (its sender's). */
  broadcast(message: ChatMessage, except: Session): void;
  /**
   * Ends the user's sessions on the other nodes (its credentials changed); with `family`, only
   * a session logged in with that token family. This node's sessions are the caller's to end.
   */
  endElsewhere(user: string, reason: string, family?: string): void;
  /** Whether `user` has a session streaming its inbox on this node (one function, made once). */
  readonly pumps: (user: string) => boolean;
  /** Tells queued items to their recipients' inbox pumps, on whichever node they are. */
  readonly offer: (queued: readonly InboxItem[]) => void;
  /** Users with a session on this node. */
  readonly onlineCount: number;
  /** Every attached session of this node (for shutdown notices). */
  sessions(): Iterable<Session>;
  /**
   * One-shot sessions (scripts) are not the user's session and not online; they are listed
   * only so that a password change or a LOGOUT everywhere can end them.
   */
  addOneShot(user: string, session: Session): void;
  removeOneShot(user: string, session: Session): void;
  oneShotsOf(user: string): Iterable<Session>;
}

/** What a hub counts: each copy of a message it hands to a session. */
export interface HubMetrics {
  messageOut(m: ChatMessage): void;
}

export class LocalHub implements Hub {
  readonly distributed = false;
  readonly #byUser = new Map<string, Session>();
  readonly #oneShots = new Map<string, Set<Session>>();

  constructor(private readonly metrics: HubMetrics = { messageOut() {} }) {}

  attach(user: string, session: Session): Session | undefined {
    const previous = this.#byUser.get(user);
    this.#byUser.set(user, session);
    return previous === session ? undefined : previous;
  }

  detach(user: string, session: Session): boolean {
    if (this.#byUser.get(user) !== session) return false;
    this.#byUser.delete(user);
    return true;
  }

  sessionOf(user: string): Session | undefined {
    return this.#byUser.get(user);
  }

  isOnline(user: string): boolean {
    return this.#byUser.has(user);
  }

  push(user: string, type: number, body: Value): void {
    this.#byUser.get(user)?.push(type, body);
  }

  *online(): Iterable<NamedUser> {
    for (const [user, s] of this.#byUser) if (s.login) yield { user, name: s.login.name };
  }

  broadcast(message: ChatMessage, except: Session | null): void {
    const pass = passBody(message, 0);
    for (const s of this.#byUser.values()) {
      if (s !== except && s.login) {
        s.push(MsgType.PASS, pass);
        this.metrics.messageOut(message);
      }
    }
  }

  endElsewhere(): void {}

  readonly pumps = (user: string): boolean => this.#byUser.get(user)?.pump != null;

  readonly offer = (queued: readonly InboxItem[]): void => {
    for (const item of queued) this.#byUser.get(item.user)?.pump?.offer(item);
  };

  get onlineCount(): number {
    return this.#byUser.size;
  }

  sessions(): Iterable<Session> {
    return this.#byUser.values();
  }

  addOneShot(user: string, session: Session): void {
    let set = this.#oneShots.get(user);
    if (!set) this.#oneShots.set(user, set = new Set());
    set.add(session);
  }

  removeOneShot(user: string, session: Session): void {
    const set = this.#oneShots.get(user);
    if (!set?.delete(session)) return;
    if (set.size === 0) this.#oneShots.delete(user);
  }

  oneShotsOf(user: string): Iterable<Session> {
    return [...this.#oneShots.get(user) ?? []];
  }

  /** Every one-shot session, of every user. */
  *allOneShots(): Iterable<Session> {
    for (const set of this.#oneShots.values()) yield* set;
  }
}
