/** Groups at the documented maximum size, on a real KV file: commits within KV's caps, crashes. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KvGroupStore, MEMBERS_PER_COMMIT } from "../../src/store/groups.ts";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import type { NamedUser } from "../../src/store/types.ts";

const people = (n: number): NamedUser[] =>
  Array.from({ length: n }, (_, i) => ({ user: `u${i}`, name: `U${i}` }));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-groups-" });
  try {
    await fn(join(dir, "data"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("GroupStore.create() takes 500 members, more than one KV commit holds; a join to it then fits too", () =>
  withDir(async (dir) => {
    const store = await openKvStore(dir);
    try {
      const members = people(500);
      assert.ok(members.length * 2 + 3 > 1000, "more rows than one atomic commit allows");
      const g = await store.groups.create("big", "u0", members);
      assert.equal(g.size, 500);
      assert.equal((await store.groups.members(g.id)).length, 500);
      assert.deepEqual((await store.groups.groupsOf("u499")).map((r) => r.id), [g.id]);
      assert.equal((await store.groups.get(g.id))?.size, 500);
      // The next group gets the next id: the counter moved once.
      const next = await store.groups.create("small", "u1", members.slice(0, 2));
      assert.equal(next.id, g.id + 1);
      assert.equal(await store.groups.addMember(g.id, { user: "x", name: "X" }, 500), "full");
      assert.equal(await store.groups.addMember(g.id, { user: "x", name: "X" }, 501), "added");
    } finally {
      await store.close();
    }
  }));

Deno.test("a large group's creation cut off by a crash leaves no members behind after a restart", () =>
  withDir(async (dir) => {
    await Deno.mkdir(dir, { recursive: true });
    // What a crash after the id and the first members' commit leaves: the marker, some members,
    // no record.
    const kv = await Deno.openKv(join(dir, KV_FILE));
    await kv.atomic().set(["group_seq"], 7).set(["group_pending", 7], new Date()).commit();
    const op = kv.atomic();
    for (const m of people(MEMBERS_PER_COMMIT)) {
      op.set(["member", 7, m.user], m.name).set(["member_of", m.user, 7], true);
    }
    assert.ok((await op.commit()).ok);
    kv.close();

    const store = await openKvStore(dir);
    try {
      assert.equal(await store.groups.get(7), null);
      assert.equal(await store.groups.countOf("u3"), 0, "the half-made group still counts");
      assert.deepEqual(await store.groups.members(7), []);
      const g = await store.groups.create("after", "u0", people(2));
      assert.equal(g.id, 8, "the id of the cut-off group is not given again");
    } finally {
      await store.close();
    }
    const raw = await Deno.openKv(join(dir, KV_FILE));
    try {
      for (const prefix of [["group_pending"], ["member", 7]]) {
        assert.equal((await Array.fromAsync(raw.list({ prefix }))).length, 0, String(prefix));
      }
    } finally {
      raw.close();
    }
  }));

Deno.test("GroupStore.sweep() keeps a group whose record was written (the marker alone goes)", () =>
  withDir(async (dir) => {
    await Deno.mkdir(dir, { recursive: true });
    const kv = await Deno.openKv(join(dir, KV_FILE));
    try {
      const groups = new KvGroupStore(kv);
      const g = await groups.create("kept", "u0", people(3));
      await kv.set(["group_pending", g.id], new Date());
      assert.equal(await groups.sweep(), 0);
      assert.equal((await groups.members(g.id)).length, 3);
      assert.equal((await kv.get(["group_pending", g.id])).versionstamp, null);
    } finally {
      kv.close();
    }
  }));

Deno.test("a large group whose last commit fails leaves no members behind, and its creator gets the error", () =>
  withDir(async (dir) => {
    await Deno.mkdir(dir, { recursive: true });
    const real = await Deno.openKv(join(dir, KV_FILE));
    try {
      // The record's commit fails (a full disk, say); the members' went through.
      const kv = failingSets(real, (key) => key[0] === "group");
      const groups = new KvGroupStore(kv);
      await assert.rejects(groups.create("big", "u0", people(500)), /disk full/);
      assert.equal(await groups.countOf("u7"), 0);
      for (const prefix of [["member"], ["member_of"], ["group_pending"]]) {
        assert.equal((await Array.fromAsync(real.list({ prefix }))).length, 0, String(prefix));
      }
    } finally {
      real.close();
    }
  }));

/** A KV whose atomic commits fail when they set a key that `hit` picks. */
function failingSets(real: Deno.Kv, hit: (key: Deno.KvKey) => boolean): Deno.Kv {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          let fail = false;
          const set = op.set.bind(op);
          op.set = (key, value, options) => {
            if (hit(key)) fail = true;
            return set(key, value, options);
          };
          const commit = op.commit.bind(op);
          op.commit = () => fail ? Promise.reject(new Error("disk full")) : commit();
          return op;
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
