/** The inbox ledger alone: its invariants, and random histories against a naive recount. */

import assert from "node:assert/strict";
import { InvariantError } from "../../src/invariant/invariant.ts";
import { type InboxLedger, Ledger } from "../../src/store/ledger.ts";

function broken(fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => e instanceof InvariantError && e.message.includes(what));
}

Deno.test("Ledger counts a message in on take and out on remove, inbox and store alike", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  const one = ledger.take(bob, "alice", 100, 40);
  const two = ledger.take(bob, "carol", 50, 50);
  assert.deepEqual([one, two, bob.next], [1, 2, 3]);
  assert.deepEqual([bob.count, bob.bytes], [2, 150]);
  assert.deepEqual(bob.bySender.get("alice"), { count: 1, bytes: 100 });
  assert.deepEqual([ledger.storedBytes(), ledger.storedBytes("alice")], [90, 40]);
  assert.equal(ledger.remove(bob, one, "alice", 100, 40), true);
  assert.equal(ledger.remove(bob, one, "alice", 100, 40), false, "counted out once");
  assert.deepEqual([bob.count, bob.bytes, bob.removedThrough], [1, 50, 1]);
  assert.equal(bob.bySender.has("alice"), false, "an empty share goes");
  assert.deepEqual([ledger.storedBytes(), ledger.storedBytes("alice")], [50, 0]);
  ledger.check();
});

Deno.test("Ledger: removing more than was counted breaks an invariant", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  const seq = ledger.take(bob, "alice", 100, 100);
  broken(() => ledger.remove(bob, seq, "alice", 200, 100), "an inbox's counts are not negative");
  const another = new Ledger();
  const carol = another.open("carol");
  const other = another.take(carol, "alice", 100, 100);
  another.take(carol, "dan", 100, 100);
  broken(() => another.remove(carol, other, "alice", 100, 300), "store bytes are not negative");
});

Deno.test("Ledger: a seq never handed out cannot be removed, failed or restored", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  broken(() => ledger.remove(bob, 1, "alice", 100, 100), "only a seq handed out is removed");
  broken(() => ledger.fail(bob, 1, "alice", 100, 100), "only a seq handed out can fail");
  const seq = ledger.take(bob, "alice", 100, 100);
  broken(() => ledger.restore(bob, seq, "alice", 100, 100), "only a message counted out");
});

Deno.test("Ledger: an inbox is opened once, loaded in seq order, and a message has a size", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  broken(() => ledger.open("bob"), "an inbox is opened once");
  ledger.load(bob, 5, "alice", 100, 100);
  broken(() => ledger.load(bob, 5, "alice", 100, 100), "rows are loaded in seq order");
  assert.equal(bob.next, 6);
  broken(() => ledger.take(bob, "alice", 0, 100), "a message has a size and a cost");
});

Deno.test("Ledger.check() catches counts that no longer sum up", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  ledger.take(bob, "alice", 100, 100);
  ledger.check();
  bob.count++;
  broken(() => ledger.check(), "the shares sum to the inbox");
  bob.count--;
  bob.removedThrough = bob.next;
  broken(() => ledger.check(), "removedThrough is below the next seq");
  bob.removedThrough = 0;
  bob.out = new Set([7]);
  broken(() => ledger.check(), "lies below the next seq");
});

Deno.test("Ledger: a failed write is counted out once, whether it is acknowledged before or after", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  const a = ledger.take(bob, "alice", 100, 100);
  const b = ledger.take(bob, "alice", 100, 100);
  assert.equal(ledger.fail(bob, b, "alice", 100, 100), true);
  assert.equal(ledger.remove(bob, a, "alice", 100, 100), true);
  assert.equal(ledger.remove(bob, b, "alice", 100, 100), false, "its write failed: out already");
  assert.equal(ledger.fail(bob, a, "alice", 100, 100), false, "acknowledged first: out already");
  assert.deepEqual([bob.count, bob.bytes, bob.out], [0, 0, null]);
  ledger.check();
});

Deno.test("Ledger.restore() counts a message in again; the seqs around it stay out", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  const seqs = [1, 2, 3, 4].map(() => ledger.take(bob, "alice", 100, 100));
  for (const s of seqs) assert.equal(ledger.remove(bob, s, "alice", 100, 100), true);
  // The delete of 2 failed, the others' committed (another removal took 3 and 4).
  ledger.restore(bob, 2, "alice", 100, 100);
  assert.deepEqual([bob.count, bob.removedThrough, [...bob.stranded!]], [1, 4, [2]]);
  // Read back after a reconnect (only 2 is stored) and acknowledged, then a late ACK of 4.
  assert.equal(ledger.remove(bob, 2, "alice", 100, 100), true, "2 is removed by a later ACK");
  assert.equal(ledger.remove(bob, 4, "alice", 100, 100), false, "4 is out already");
  assert.deepEqual([bob.count, bob.removedThrough, bob.stranded], [0, 4, null]);
  ledger.check();
});

Deno.test("Ledger: a message whose delete failed is removed by a later ACK after the session moved on", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  for (let i = 0; i < 8; i++) ledger.take(bob, "alice", 100, 100);
  for (const s of [1, 2, 3, 4, 5]) ledger.remove(bob, s, "alice", 100, 100);
  ledger.restore(bob, 5, "alice", 100, 100); // its delete failed
  // The same session goes on acknowledging 6..8: the mark passes 5, which is still stored.
  for (const s of [6, 7, 8]) assert.equal(ledger.remove(bob, s, "alice", 100, 100), true);
  assert.equal(bob.isOut(5), false, "5 still counts");
  // After a reconnect 5 is read back and acknowledged: it goes now.
  assert.equal(ledger.remove(bob, 5, "alice", 100, 100), true);
  assert.deepEqual([bob.count, bob.bytes, bob.stranded], [0, 0, null]);
  ledger.check();
});

Deno.test("Ledger: a message acknowledged while its write failed stays out when its delete fails", () => {
  const ledger = new Ledger();
  const bob = ledger.open("bob");
  const seq = ledger.take(bob, "alice", 100, 100);
  assert.equal(ledger.remove(bob, seq, "alice", 100, 100), true, "the ACK counts it out");
  assert.equal(ledger.fail(bob, seq, "alice", 100, 100), false, "then its write fails");
  ledger.restore(bob, seq, "alice", 100, 100); // and its delete fails too
  assert.deepEqual([bob.count, bob.bytes, ledger.storedBytes(), bob.unwritten], [0, 0, 0, null]);
  // The same with a delete that commits: the mark goes.
  const next = ledger.take(bob, "alice", 100, 100);
  ledger.remove(bob, next, "alice", 100, 100);
  ledger.fail(bob, next, "alice", 100, 100);
  ledger.deleted(bob, next);
  assert.equal(bob.unwritten, null);
  ledger.check();
});

/** A small seeded PRNG (mulberry32): the same seed gives the same history. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelItem {
  seq: number;
  sender: string;
  size: number;
  cost: number;
  counted: boolean;
}

/** What a naive recount of the model finds, compared with the ledger's figures. */
function compare(
  ledger: Ledger,
  model: Map<string, ModelItem[]>,
  inboxes: Map<string, InboxLedger>,
) {
  let total = 0;
  const senderBytes = new Map<string, number>();
  for (const [user, items] of model) {
    const inbox = inboxes.get(user)!;
    let count = 0;
    let bytes = 0;
    const shares = new Map<string, { count: number; bytes: number }>();
    for (const item of items) {
      assert.equal(inbox.isOut(item.seq), !item.counted, `${user}'s seq ${item.seq}`);
      if (!item.counted) continue;
      count++;
      bytes += item.size;
      const share = shares.get(item.sender) ?? { count: 0, bytes: 0 };
      share.count++;
      share.bytes += item.size;
      shares.set(item.sender, share);
      total += item.cost;
      senderBytes.set(item.sender, (senderBytes.get(item.sender) ?? 0) + item.cost);
    }
    assert.deepEqual([inbox.count, inbox.bytes], [count, bytes], `${user}'s counts`);
    assert.deepEqual(new Map(inbox.bySender), shares, `${user}'s shares`);
  }
  assert.equal(ledger.storedBytes(), total);
  for (const sender of ["s0", "s1", "s2", "s3"]) {
    assert.equal(ledger.storedBytes(sender), senderBytes.get(sender) ?? 0, `${sender}'s bytes`);
  }
  ledger.check();
}

/**
 * Random histories as the inbox store makes them: rows loaded at start, sends, failed writes,
 * cumulative ACKs of what the pump holds or read back, deletes that fail (their messages are
 * restored and acknowledged again later) and late duplicate ACKs.
 */
function simulate(seed: number, steps: number): void {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const ledger = new Ledger();
  const users = ["u0", "u1", "u2"];
  const senders = ["s0", "s1", "s2", "s3"];
  const model = new Map<string, ModelItem[]>();
  const inboxes = new Map<string, InboxLedger>();
  /** Per user: every seq up to this one was acknowledged (the pump's view). */
  const acked = new Map<string, number>();
  const item = (seq: number): ModelItem => ({
    seq,
    sender: pick(senders),
    size: 1 + Math.floor(random() * 500),
    cost: 1 + Math.floor(random() * 500),
    counted: true,
  });
  for (const user of users) {
    const inbox = ledger.open(user);
    inboxes.set(user, inbox);
    acked.set(user, 0);
    const items: ModelItem[] = [];
    // Rows left by an earlier run, with gaps where writes failed or ACKs came.
    let seq = 0;
    for (let n = Math.floor(random() * 5); n > 0; n--) {
      seq += 1 + Math.floor(random() * 3);
      const it = item(seq);
      ledger.load(inbox, it.seq, it.sender, it.size, it.cost);
      items.push(it);
    }
    model.set(user, items);
  }
  for (let step = 0; step < steps; step++) {
    const user = pick(users);
    const inbox = inboxes.get(user)!;
    const items = model.get(user)!;
    const r = random();
    try {
      if (r < 0.45) {
        const it = item(0);
        it.seq = ledger.take(inbox, it.sender, it.size, it.cost);
        items.push(it);
      } else if (r < 0.55 && items.length > 0) {
        // A write fails: the copy was counted out unless acknowledged first.
        const it = pick(items.filter((i) => i.seq > acked.get(user)!).concat(items.slice(-1)));
        assert.equal(ledger.fail(inbox, it.seq, it.sender, it.size, it.cost), it.counted);
        it.counted = false;
      } else if (r < 0.9 && items.length > 0) {
        // A cumulative ACK of the items the pump holds (failed copies too) or read back.
        const from = acked.get(user)!;
        const upTo = pick(items).seq;
        if (upTo <= from) continue;
        const readBack = random() < 0.3;
        const batch = items.filter((i) =>
          i.seq > from && i.seq <= upTo && (!readBack || i.counted)
        );
        const counted: ModelItem[] = [];
        for (const it of batch) {
          assert.equal(ledger.remove(inbox, it.seq, it.sender, it.size, it.cost), it.counted);
          if (it.counted) counted.push(it);
          it.counted = false;
        }
        acked.set(user, upTo);
        if (counted.length > 0 && random() < 0.15) {
          // The deletes from some point on failed: those messages are stored and count again.
          const first = Math.floor(random() * counted.length);
          for (const it of counted.slice(first)) {
            ledger.restore(inbox, it.seq, it.sender, it.size, it.cost);
            it.counted = true;
          }
          acked.set(user, Math.min(upTo, counted[first].seq - 1));
        }
      } else if (items.length > 0) {
        // A late duplicate ACK of a copy counted out already.
        const out = items.filter((i) => !i.counted);
        if (out.length === 0) continue;
        const it = pick(out);
        if (it.seq > acked.get(user)!) continue; // acknowledging it would acknowledge others
        assert.equal(ledger.remove(inbox, it.seq, it.sender, it.size, it.cost), false);
      }
      // What is acknowledged and counted out is forgotten by the model too, now and then.
      if (random() < 0.05) {
        const keep = items.filter((i) => i.counted || i.seq > acked.get(user)!);
        items.length = 0;
        items.push(...keep);
      }
      compare(ledger, model, inboxes);
    } catch (e) {
      throw new Error(`ledger simulation failed: seed ${seed}, step ${step}`, { cause: e });
    }
  }
}

Deno.test("Ledger matches a naive recount over random histories (20 seeds × 2000 steps)", () => {
  for (let seed = 1; seed <= 20; seed++) simulate(seed, 2000);
});
