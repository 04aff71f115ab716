/**
 * Blocks over the pairs of pairs.ts: who blocked whom is in the pair's key (one
 * compare-and-set per change), and either side's view is one read of their ties. Nothing is
 * cached: another node may add a block at any time, and every private message asks.
 */

import type { BlockStore, NamedUser } from "../types.ts";
import { namedWhere } from "./friends.ts";
import type { PairStore } from "./pairs.ts";

export class NatsBlockStore implements BlockStore {
  constructor(private readonly pairs: PairStore) {}

  async add(
    blocker: NamedUser,
    blocked: NamedUser,
    max: number,
  ): Promise<"added" | "already" | "full"> {
    // Handlers refuse a block of oneself; one here would hide the user from their own view.
    if (blocker.user === blocked.user) throw new Error(`A user cannot block themself`);
    if (await this.blocked(blocker.user, blocked.user)) return "already";
    // Counted apart from the commit (as in the KV store): two blocks at once may pass it by one.
    if ((await this.list(blocker.user)).length >= max) return "full";
    return this.pairs.change<"added" | "already">(
      blocker,
      blocked,
      (p) =>
        p.blocks.includes(blocker.user) ? { result: "already" } : {
          next: { ...p, blocks: [...p.blocks, blocker.user] },
          result: "added",
        },
    );
  }

  remove(blocker: string, blocked: string): Promise<boolean> {
    if (blocker === blocked) return Promise.resolve(false);
    return this.pairs.change(
      blocker,
      blocked,
      (p) =>
        !p.blocks.includes(blocker) ? { result: false } : {
          next: { ...p, blocks: p.blocks.filter((u) => u !== blocker) },
          result: true,
        },
    );
  }

  async list(user: string): Promise<NamedUser[]> {
    return namedWhere(await this.pairs.ties(user), (t) => t.blocks === true);
  }

  async blocked(user: string, other: string): Promise<boolean> {
    if (user === other) return false;
    return (await this.pairs.get(user, other))?.blocks.includes(user) ?? false;
  }

  async either(user: string): Promise<ReadonlySet<string>> {
    const out = new Set<string>();
    for (const [other, tie] of await this.pairs.ties(user)) {
      if (tie.blocks || tie.blockedBy) out.add(other);
    }
    return out;
  }

  async clear(user: string): Promise<void> {
    for (const other of await this.either(user)) {
      await this.pairs.change(user, other, (p) =>
        p.blocks.length === 0 ? { result: undefined } : {
          next: { ...p, blocks: [] },
          result: undefined,
        });
    }
  }
}
