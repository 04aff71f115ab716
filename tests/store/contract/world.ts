/** The contract of the world room's backlog. */

import assert from "node:assert/strict";
import { type ContractTest, text } from "./harness.ts";

export function worldContract(test: ContractTest): void {
  test(
    "world: appended messages come back oldest first, with rising seqs and a new version",
    async (t) => {
      const { world } = t.store;
      assert.deepEqual(world.recent(), []);
      const v0 = world.version;
      await world.append(text("alice", "one"));
      const v1 = world.version;
      assert.notEqual(v1, v0);
      await world.append(text("bob", "two"));
      assert.notEqual(world.version, v1);
      assert.deepEqual(world.recent().map((m) => m.text), ["one", "two"]);
      const entries = world.entries();
      assert.deepEqual(entries.map((e) => e.message.text), ["one", "two"]);
      assert.equal(entries[1].seq, entries[0].seq + 1);
    },
    { worldBacklog: 3 },
  );

  test("world: the backlog keeps the last messages only, and seqs go on", async (t) => {
    const { world } = t.store;
    for (let i = 0; i < 5; i++) await world.append(text("alice", `m${i}`));
    assert.deepEqual(world.recent().map((m) => m.text), ["m2", "m3", "m4"]);
    const seqs = world.entries().map((e) => e.seq);
    assert.deepEqual(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2]);
  }, { worldBacklog: 3 });

  test("world: the backlog and its seqs survive a restart", async (t) => {
    for (let i = 0; i < 4; i++) await t.store.world.append(text("alice", `m${i}`));
    const before = t.store.world.entries().map((e) => [e.seq, e.message.text]);
    const { world } = await t.reopen();
    assert.deepEqual(world.entries().map((e) => [e.seq, e.message.text]), before);
    await world.append(text("bob", "after"));
    const after = world.entries();
    assert.equal(after.at(-1)!.seq, (before.at(-1)![0] as number) + 1);
    assert.deepEqual(world.recent().map((m) => m.text), ["m2", "m3", "after"]);
  }, { worldBacklog: 3 });
}
