/**
 * What lies between two users, in the `social` bucket:
 *   pair.<lo>.<hi> → Pair        THE truth: friendship, waiting friend requests, blocks
 *   ties.<user> → index of Tie   each user's view of their pairs, for lists in one read
 * One key per pair makes each change between two users one compare-and-set: accepting a
 * request is the request's end and the friendship at once, and two nodes accepting or adding
 * at once cannot both win. The per-user index follows by the mark/settle rule of
 * derived_index.ts, so a login reads its friends, requests and blocks in one read.
 */

import { userToken } from "../../cluster/names.ts";
import type { Clock } from "../../clock/clock.ts";
import { invariant } from "../../invariant/invariant.ts";
import type { NamedUser } from "../types.ts";
import type { RelationImage } from "../transfer.ts";
import { DerivedIndex, settledIndex } from "./derived_index.ts";
import { change, read, type RecordBucket } from "./kv_records.ts";

export interface Pair {
  /** Display names of both sides, as last given. */
  names: Record<string, string>;
  friends: boolean;
  /** Who asked the other to be friends and waits (one or both identities). */
  asked: string[];
  /** Who blocked the other (one or both identities). */
  blocks: string[];
}

/** One user's view of a pair: the other's name and what holds between them. */
export interface Tie {
  name: string;
  friend?: true;
  /** The other asked this user. */
  incoming?: true;
  /** This user asked the other. */
  outgoing?: true;
  /** This user blocked the other. */
  blocks?: true;
  /** The other blocked this user. */
  blockedBy?: true;
}

function pairKey(a: string, b: string): string {
  invariant(a !== b, "a pair is of two users");
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return `pair.${userToken(lo)}.${userToken(hi)}`;
}

const tiesKey = (user: string) => `ties.${userToken(user)}`;

export function emptyPair(): Pair {
  return { names: {}, friends: false, asked: [], blocks: [] };
}

function isEmpty(p: Pair): boolean {
  return !p.friends && p.asked.length === 0 && p.blocks.length === 0;
}

/** What `user` sees of `other` in pair `p`; null when nothing holds between them. */
export function tieOf(p: Pair | null, user: string, other: string): Tie | null {
  if (p === null || isEmpty(p)) return null;
  const tie: Tie = { name: p.names[other] ?? other };
  if (p.friends) tie.friend = true;
  if (p.asked.includes(other)) tie.incoming = true;
  if (p.asked.includes(user)) tie.outgoing = true;
  if (p.blocks.includes(user)) tie.blocks = true;
  if (p.blocks.includes(other)) tie.blockedBy = true;
  return tie;
}

/**
 * Relations brought from another store (import.ts), as the records to write: one pair per two
 * users with everything between them, and each user's ties, settled (no marks). A relation
 * given twice (once from each side) counts once.
 */
export function importedPairs(relations: Iterable<RelationImage>): [string, unknown][] {
  const pairs = new Map<string, { a: string; b: string; pair: Pair }>();
  for (const r of relations) {
    const [a, b] = [r.from.user, r.to.user];
    if (a === b) continue; // no store keeps one, and a pair is of two users
    const key = pairKey(a, b);
    let held = pairs.get(key);
    if (!held) pairs.set(key, held = { a, b, pair: emptyPair() });
    const p = held.pair;
    p.names[a] = r.from.name;
    p.names[b] = r.to.name;
    if (r.kind === "friend") p.friends = true;
    else if (r.kind === "request" && !p.asked.includes(a)) p.asked.push(a);
    else if (r.kind === "block" && !p.blocks.includes(a)) p.blocks.push(a);
  }
  const out: [string, unknown][] = [];
  const ties = new Map<string, Record<string, Tie>>();
  const tie = (user: string, other: string, p: Pair) => {
    const t = tieOf(p, user, other);
    invariant(t !== null, "an imported pair holds something");
    let view = ties.get(user);
    if (!view) ties.set(user, view = {});
    view[other] = t!;
  };
  for (const [key, { a, b, pair }] of pairs) {
    // Friends never wait for each other (accepting a request ends both sides' requests).
    if (pair.friends) pair.asked = [];
    if (isEmpty(pair)) continue;
    out.push([key, pair]);
    tie(a, b, pair);
    tie(b, a, pair);
  }
  for (const [user, view] of ties) out.push([tiesKey(user), settledIndex(view)]);
  return out;
}

/** A change of a pair: the next pair (undefined: no change) and the answer. */
export type PairStep<R> = (p: Pair) => { next?: Pair; result: R };

export class PairStore {
  readonly #ties: DerivedIndex<Tie>;

  constructor(private readonly kv: RecordBucket, clock: Clock) {
    this.#ties = new DerivedIndex<Tie>(
      kv,
      tiesKey,
      async (user, other) => tieOf(await this.get(user, other), user, other),
      clock,
    );
  }

  async get(a: string, b: string): Promise<Pair | null> {
    return (await read<Pair>(this.kv, pairKey(a, b))).value;
  }

  /** `user`'s ties, keyed by the other user; a read or two. */
  ties(user: string): Promise<Map<string, Tie>> {
    return this.#ties.read(user);
  }

  /**
   * Changes the pair of `a` and `b` by `step` (compare-and-set, again on conflict), naming
   * them as given. A step that changes nothing costs one read; a change marks and settles
   * both users' ties around its commit.
   */
  async change<R>(a: NamedUser | string, b: NamedUser | string, step: PairStep<R>): Promise<R> {
    const ua = typeof a === "string" ? a : a.user;
    const ub = typeof b === "string" ? b : b.user;
    const named = (p: Pair): Pair => {
      const names = { ...p.names };
      if (typeof a !== "string") names[a.user] = a.name;
      if (typeof b !== "string") names[b.user] = b.name;
      return { ...p, names };
    };
    // A first look without marks: most refused changes (already friends, no request) end here.
    const first = step(named((await this.get(ua, ub)) ?? emptyPair()));
    if (first.next === undefined) return first.result;
    return await this.#ties.changing(
      [[ua, ub], [ub, ua]],
      () =>
        change<Pair, R>(this.kv, pairKey(ua, ub), (cur) => {
          const { next, result } = step(named(cur ?? emptyPair()));
          if (next === undefined) return { result };
          invariant(new Set(next.asked).size === next.asked.length, "a request is kept once");
          invariant(new Set(next.blocks).size === next.blocks.length, "a block is kept once");
          return { next: isEmpty(next) ? null : next, result };
        }),
    );
  }
}
