/**
 * Friendships in Deno KV, kept both ways: ["friend", user, other] → other's display name.
 * Lists are read at every login and logout (presence goes to online friends), so the lists of
 * users seen lately are kept in memory; this process owns the store, and every change to a
 * friendship goes through add(), remove() or acceptRequest(), which drop the cached lists of both
 * sides.
 *
 * Friend requests wait until the other side answers, kept both ways as well:
 *   ["friend_req", to, from] → from's display name   ["friend_req_out", from, to] → to's name
 * Every login reads its user's requests (for INITIALIZE), so those are kept in memory the same
 * way: request(), dropRequest() and acceptRequest() drop both sides' once they have committed.
 */

import { ReadCache } from "./read_cache.ts";
import type { FriendStore, NamedUser } from "./types.ts";
import {
  friendKey,
  friendRequestKey,
  friendRequestOutKey,
  friendRequestsOutPrefix,
  friendRequestsPrefix,
  friendsPrefix,
} from "./kv_keys.ts";

/** Users whose friend lists are kept in memory; past this the longest-held list goes. */
const CACHED_LISTS = 10_000;
const NO_FRIENDS: readonly NamedUser[] = Object.freeze([]);

interface Requests {
  incoming: readonly NamedUser[];
  outgoing: readonly NamedUser[];
}
const NO_REQUESTS: Requests = Object.freeze({ incoming: NO_FRIENDS, outgoing: NO_FRIENDS });

export class KvFriendStore implements FriendStore {
  readonly #lists = new ReadCache<string, readonly NamedUser[]>(CACHED_LISTS);
  readonly #requests = new ReadCache<string, Requests>(CACHED_LISTS);

  constructor(private readonly kv: Deno.Kv) {}

  #forget(...users: string[]): void {
    for (const user of users) this.#lists.forget(user);
  }

  /** Drops the cached requests of both sides; call once the change has committed (or failed). */
  #forgetRequests(a: string, b: string): void {
    this.#requests.forget(a);
    this.#requests.forget(b);
  }

  async add(a: NamedUser, b: NamedUser): Promise<boolean> {
    const ab = friendKey(a.user, b.user);
    const ba = friendKey(b.user, a.user);
    const result = await this.kv.atomic()
      .check({ key: ab, versionstamp: null })
      .set(ab, b.name)
      .set(ba, a.name)
      .commit();
    this.#forget(a.user, b.user);
    return result.ok;
  }

  async remove(a: string, b: string): Promise<boolean> {
    const ab = friendKey(a, b);
    const entry = await this.kv.get(ab);
    if (entry.versionstamp === null) return false;
    try {
      await this.kv.atomic().delete(ab).delete(friendKey(b, a)).commit();
    } finally {
      this.#forget(a, b);
    }
    return true;
  }

  async list(user: string): Promise<NamedUser[]> {
    // Callers may sort or change their copy.
    return [...await this.#lists.get(user, () => this.#read(user))];
  }

  async #read(user: string): Promise<readonly NamedUser[]> {
    const out: NamedUser[] = [];
    for await (const e of this.kv.list<string>({ prefix: friendsPrefix(user) })) {
      out.push({ user: e.key[2] as string, name: e.value });
    }
    return out.length > 0 ? out : NO_FRIENDS; // many users: one shared empty list
  }

  async count(user: string): Promise<number> {
    return (await this.list(user)).length;
  }

  async request(
    from: NamedUser,
    to: NamedUser,
    max: number,
  ): Promise<"requested" | "waiting" | "full"> {
    if (from.user === to.user) throw new Error("A user cannot ask themself to be friends");
    const incoming = friendRequestKey(to.user, from.user);
    const outgoing = friendRequestOutKey(from.user, to.user);
    while (true) {
      const existing = await this.kv.get(incoming);
      if (existing.versionstamp !== null) return "waiting";
      const [theirs, mine] = await Promise.all([
        this.#countPrefix(friendRequestsPrefix(to.user)),
        this.#countPrefix(friendRequestsOutPrefix(from.user)),
      ]);
      if (theirs >= max || mine >= max) return "full";
      let result;
      try {
        result = await this.kv.atomic()
          .check(existing)
          .set(incoming, from.name)
          .set(outgoing, to.name)
          .commit();
      } finally {
        this.#forgetRequests(from.user, to.user);
      }
      if (result.ok) return "requested";
    }
  }

  async #countPrefix(prefix: Deno.KvKey): Promise<number> {
    let n = 0;
    for await (const _ of this.kv.list({ prefix })) n++;
    return n;
  }

  async dropRequest(from: string, to: string): Promise<boolean> {
    const incoming = friendRequestKey(to, from);
    if ((await this.kv.get(incoming)).versionstamp === null) return false;
    try {
      await this.kv.atomic().delete(incoming).delete(friendRequestOutKey(from, to)).commit();
    } finally {
      this.#forgetRequests(from, to);
    }
    return true;
  }

  async hasRequest(from: string, to: string): Promise<boolean> {
    return (await this.kv.get(friendRequestKey(to, from))).versionstamp !== null;
  }

  async acceptRequest(from: NamedUser, to: NamedUser): Promise<boolean> {
    if (from.user === to.user) throw new Error("A user cannot be their own friend");
    const request = await this.kv.get(friendRequestKey(to.user, from.user));
    if (request.versionstamp === null) return false;
    const ab = friendKey(from.user, to.user);
    const ba = friendKey(to.user, from.user);
    const commit = this.kv.atomic()
      .check(request)
      .check({ key: ab, versionstamp: null })
      .set(ab, to.name)
      .set(ba, from.name)
      .delete(friendRequestKey(to.user, from.user))
      .delete(friendRequestOutKey(from.user, to.user))
      // A request the other way (both asked at once) is answered by the friendship too.
      .delete(friendRequestKey(from.user, to.user))
      .delete(friendRequestOutKey(to.user, from.user))
      .commit();
    let result;
    try {
      result = await commit;
    } finally {
      this.#forget(from.user, to.user);
      this.#forgetRequests(from.user, to.user);
    }
    return result.ok;
  }

  async requests(user: string): Promise<{ incoming: NamedUser[]; outgoing: NamedUser[] }> {
    const { incoming, outgoing } = await this.#requests.get(user, () => this.#readRequests(user));
    // Callers may sort or change their copies.
    return { incoming: [...incoming], outgoing: [...outgoing] };
  }

  async #readRequests(user: string): Promise<Requests> {
    const read = async (prefix: Deno.KvKey) => {
      const out: NamedUser[] = [];
      for await (const e of this.kv.list<string>({ prefix })) {
        out.push({ user: e.key[2] as string, name: e.value });
      }
      return out.length > 0 ? out : NO_FRIENDS;
    };
    const [incoming, outgoing] = await Promise.all([
      read(friendRequestsPrefix(user)),
      read(friendRequestsOutPrefix(user)),
    ]);
    // Most users have none: one shared record for them all.
    return incoming.length + outgoing.length > 0 ? { incoming, outgoing } : NO_REQUESTS;
  }

  async clearRequests(user: string): Promise<void> {
    const { incoming, outgoing } = await this.requests(user);
    for (const from of incoming) await this.dropRequest(from.user, user);
    for (const to of outgoing) await this.dropRequest(user, to.user);
  }
}
