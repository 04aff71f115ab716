/**
 * The hub seam: who is online and which session serves each user. Handlers use only this
 * interface; today it is one process's memory, later a cluster implementation can replace it.
 */

import type { InboxItem } from "../store/types.ts";
import type { Session } from "./session.ts";

export interface Hub {
  /** Makes `session` the user's session; returns the one it replaces, if any. */
  attach(user: string, session: Session): Session | undefined;
  /** Removes `session` if it is still the user's session; true if it was. */
  detach(user: string, session: Session): boolean;
  sessionOf(user: string): Session | undefined;
  /** Whether `user` has a session streaming its inbox (one function, made once). */
  readonly pumps: (user: string) => boolean;
  /** Offers queued items to their recipients' inbox pumps, for those online. */
  readonly offer: (queued: readonly InboxItem[]) => void;
  readonly onlineCount: number;
  /** Every attached session (for shutdown notices). */
  sessions(): Iterable<Session>;
  /**
   * One-shot sessions (scripts) are not the user's session and not online; they are listed
   * only so that a password change or a LOGOUT everywhere can end them.
   */
  addOneShot(user: string, session: Session): void;
  removeOneShot(user: string, session: Session): void;
  oneShotsOf(user: string): Iterable<Session>;
}

export class LocalHub implements Hub {
  readonly #byUser = new Map<string, Session>();
  readonly #oneShots = new Map<string, Set<Session>>();

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
}
