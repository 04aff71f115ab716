/**
 * A per-user index over truths kept elsewhere, for lists that must be one read: a user's
 * friends, requests and blocks (truth: one key per pair of users), a user's groups (truth: the
 * group's key). NATS has no multi-key transaction, so the index cannot change in one commit
 * with its truth; instead every change of a truth goes
 *
 *   1. mark: the index of each user concerned gets a mark naming the other side;
 *   2. commit the truth (one compare-and-set on its key);
 *   3. settle: read the index, THEN read the truth, write the view of that truth into the index
 *      and drop the mark, by compare-and-set on the index.
 *
 * Invariant: wherever an index's view of `other` may differ from the truth, the index holds a
 * mark for `other`, and readers resolve marked entries from the truth. A commit's mark is in
 * place before the commit; a settle that read the truth before a later commit either wrote over
 * an index already holding that commit's mark (and keeps it: a settle drops only its own mark),
 * or the mark came after the settle's read of the index, and its compare-and-set fails.
 * A node killed between 1 and 3 leaves a mark: readers pay one more read for it until a later
 * change of the same pair settles it, or a read finds it older than STALE_MARK_MS and repairs it.
 */

import type { Clock } from "../../clock/clock.ts";
import { change, MAX_ATTEMPTS, read, type RecordBucket, tooHot, writeIf } from "./kv_records.ts";

/**
 * A mark this old belongs to a node that died between mark and settle: no change takes this
 * long between its two steps (a few round trips to JetStream), unless its node stalled, which
 * is the case this bound cannot cover (a stalled node's late commit would then go unmarked).
 */
export const STALE_MARK_MS = 120_000;

interface Mark {
  /** The other side: the key the truth is found under. */
  of: string;
  /** Wall time the mark was made. */
  at: number;
}

export interface IndexValue<V> {
  view: Record<string, V>;
  marks: Record<string, Mark>;
}

/** An index that agrees with its truths: `view`, with no mark (import.ts writes these whole). */
export function settledIndex<V>(view: Record<string, V>): IndexValue<V> {
  return { view, marks: {} };
}

export class DerivedIndex<V> {
  constructor(
    private readonly kv: RecordBucket,
    /** The index key of a user. */
    private readonly keyOf: (user: string) => string,
    /** What the truth says `user` sees of `other`; null: nothing (no entry). */
    private readonly truth: (user: string, other: string) => Promise<V | null>,
    private readonly clock: Clock,
  ) {}

  /**
   * Runs `commit` (the change of truths between `pairs`, [user, other] each) between the marks
   * and the settles. Settles run even when the commit failed: its outcome is unknown.
   */
  async changing<R>(pairs: [string, string][], commit: () => Promise<R>): Promise<R> {
    const marks = await Promise.all(pairs.map(([user, other]) => this.#mark(user, other)));
    try {
      return await commit();
    } finally {
      await Promise.all(pairs.map(([user, other], i) => this.#settle(user, other, marks[i])));
    }
  }

  async #mark(user: string, other: string): Promise<string> {
    const id = crypto.randomUUID();
    const at = this.clock.wall();
    await change<IndexValue<V>, void>(this.kv, this.keyOf(user), (cur) => ({
      next: { view: cur?.view ?? {}, marks: { ...cur?.marks, [id]: { of: other, at } } },
      result: undefined,
    }));
    return id;
  }

  /** Writes the truth's view of `other` into `user`'s index, dropping mark `id` (and stale ones). */
  async #settle(user: string, other: string, id: string | null): Promise<void> {
    // Not `change`: the truth must be read after the index, on every attempt (see above).
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cur = await read<IndexValue<V>>(this.kv, this.keyOf(user));
      const seen = await this.truth(user, other);
      const view = { ...cur.value?.view };
      if (seen === null) delete view[other];
      else view[other] = seen;
      const marks = { ...cur.value?.marks };
      if (id !== null) delete marks[id];
      const stale = this.clock.wall() - STALE_MARK_MS;
      for (const [m, mark] of Object.entries(marks)) {
        if (mark.of === other && mark.at < stale) delete marks[m];
      }
      const empty = Object.keys(view).length === 0 && Object.keys(marks).length === 0;
      const next = empty ? null : { view, marks };
      if (await writeIf(this.kv, this.keyOf(user), next, cur.revision)) return;
    }
    throw tooHot(this.keyOf(user));
  }

  /** `user`'s entries as the truths have them now: one read, plus one per marked entry. */
  async read(user: string): Promise<Map<string, V>> {
    const { value } = await read<IndexValue<V>>(this.kv, this.keyOf(user));
    const out = new Map(Object.entries(value?.view ?? {}));
    if (!value) return out;
    const stale = this.clock.wall() - STALE_MARK_MS;
    const marked = new Set<string>();
    const repair = new Set<string>();
    for (const mark of Object.values(value.marks)) {
      marked.add(mark.of);
      if (mark.at < stale) repair.add(mark.of);
    }
    await Promise.all([...marked].map(async (other) => {
      const seen = await this.truth(user, other);
      if (seen === null) out.delete(other);
      else out.set(other, seen);
    }));
    // A dead node's marks: settled in the background, the answer above needs no write.
    for (const other of repair) void this.#settle(user, other, null).catch(() => {});
    return out;
  }
}
