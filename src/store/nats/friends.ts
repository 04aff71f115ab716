/**
 * Friendships and friend requests over the pairs of pairs.ts: each change is one
 * compare-and-set of the pair's key, and each list one read of the user's ties.
 */

import type { FriendStore, NamedUser } from "../types.ts";
import type { PairStore, Tie } from "./pairs.ts";

/** Named users in identity order (as the KV store lists them). */
export function namedWhere(ties: Map<string, Tie>, keep: (t: Tie) => boolean): NamedUser[] {
  const out: NamedUser[] = [];
  for (const [user, tie] of ties) if (keep(tie)) out.push({ user, name: tie.name });
  return out.sort((a, b) => a.user < b.user ? -1 : a.user > b.user ? 1 : 0);
}

export class NatsFriendStore implements FriendStore {
  constructor(private readonly pairs: PairStore) {}

  add(a: NamedUser, b: NamedUser): Promise<boolean> {
    if (a.user === b.user) throw new Error("A user cannot be their own friend");
    return this.pairs.change(a, b, (p) =>
      p.friends ? { result: false } : {
        next: { ...p, friends: true },
        result: true,
      });
  }

  remove(a: string, b: string): Promise<boolean> {
    if (a === b) return Promise.resolve(false);
    return this.pairs.change(a, b, (p) =>
      !p.friends ? { result: false } : {
        next: { ...p, friends: false },
        result: true,
      });
  }

  async list(user: string): Promise<NamedUser[]> {
    return namedWhere(await this.pairs.ties(user), (t) => t.friend === true);
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
    if (await this.hasRequest(from.user, to.user)) return "waiting";
    // The caps are read apart from the commit (as in the KV store): two requests at the same
    // moment may both pass a cap by one.
    const [theirs, mine] = await Promise.all([this.requests(to.user), this.requests(from.user)]);
    if (theirs.incoming.length >= max || mine.outgoing.length >= max) return "full";
    return this.pairs.change<"requested" | "waiting">(
      from,
      to,
      (p) =>
        p.asked.includes(from.user) ? { result: "waiting" } : {
          next: { ...p, asked: [...p.asked, from.user] },
          result: "requested",
        },
    );
  }

  dropRequest(from: string, to: string): Promise<boolean> {
    if (from === to) return Promise.resolve(false);
    return this.pairs.change(from, to, (p) =>
      !p.asked.includes(from) ? { result: false } : {
        next: { ...p, asked: p.asked.filter((u) => u !== from) },
        result: true,
      });
  }

  async hasRequest(from: string, to: string): Promise<boolean> {
    if (from === to) return false;
    return (await this.pairs.get(from, to))?.asked.includes(from) ?? false;
  }

  acceptRequest(from: NamedUser, to: NamedUser): Promise<boolean> {
    if (from.user === to.user) throw new Error("A user cannot be their own friend");
    // One commit: the request goes, a request the other way too (both asked at once), and
    // the friendship begins.
    return this.pairs.change(
      from,
      to,
      (p) =>
        !p.asked.includes(from.user) || p.friends ? { result: false } : {
          next: { ...p, friends: true, asked: [] },
          result: true,
        },
    );
  }

  async requests(user: string): Promise<{ incoming: NamedUser[]; outgoing: NamedUser[] }> {
    const ties = await this.pairs.ties(user);
    return {
      incoming: namedWhere(ties, (t) => t.incoming === true),
      outgoing: namedWhere(ties, (t) => t.outgoing === true),
    };
  }

  async clearRequests(user: string): Promise<void> {
    const ties = await this.pairs.ties(user);
    for (const [other, tie] of ties) {
      if (!tie.incoming && !tie.outgoing) continue;
      await this.pairs.change(user, other, (p) =>
        p.asked.length === 0 ? { result: undefined } : {
          next: { ...p, asked: [] },
          result: undefined,
        });
    }
  }
}
