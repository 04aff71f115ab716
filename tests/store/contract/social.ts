/** The contract of friends, friend requests, blocks, group invitations and groups. */

import assert from "node:assert/strict";
import { ANN, BEN, type ContractTest, CY, people } from "./harness.ts";

const names = (list: { name: string }[]) => list.map((x) => x.name).sort();

export function socialContract(test: ContractTest): void {
  test("friends: add and remove show on both sides, after being read", async (t) => {
    const { friends } = t.store;
    // Read first, so that a store holding lists in memory has them.
    assert.deepEqual(await friends.list("ann"), []);
    assert.deepEqual(await friends.list("ben"), []);
    assert.equal(await friends.add(ANN, BEN), true);
    assert.equal(await friends.add(BEN, ANN), false, "already friends, either way round");
    assert.equal(await friends.add(CY, ANN), true);
    assert.deepEqual(names(await friends.list("ann")), ["Cy", "ben"]);
    assert.deepEqual(await friends.list("ben"), [ANN]);
    assert.equal(await friends.count("ann"), 2);
    // A caller changing its copy changes nothing for the next caller.
    (await friends.list("ann")).length = 0;
    assert.equal(await friends.count("ann"), 2);
    assert.equal(await friends.remove("ben", "ann"), true);
    assert.equal(await friends.remove("ann", "ben"), false);
    assert.deepEqual(await friends.list("ann"), [CY]);
    assert.deepEqual(await friends.list("ben"), []);
    assert.equal(await friends.count("ben"), 0);
  });

  test("friends: requests wait until answered; accepting makes both friends at once", async (t) => {
    const { friends } = t.store;
    assert.equal(await friends.request(ANN, BEN, 10), "requested");
    assert.equal(await friends.request(ANN, BEN, 10), "waiting");
    assert.equal(await friends.hasRequest("ann", "ben"), true);
    assert.equal(await friends.hasRequest("ben", "ann"), false);
    assert.equal(await friends.request(ANN, CY, 1), "full", "ann has 1 request out already");
    assert.equal(await friends.request(CY, BEN, 1), "full", "ben has 1 request waiting already");
    assert.deepEqual(await friends.requests("ben"), { incoming: [ANN], outgoing: [] });
    assert.deepEqual(await friends.requests("ann"), { incoming: [], outgoing: [BEN] });
    assert.deepEqual(await friends.list("ann"), []);
    assert.equal(await friends.acceptRequest(ANN, BEN), true);
    assert.deepEqual(await friends.list("ann"), [BEN]);
    assert.deepEqual(await friends.list("ben"), [ANN]);
    assert.deepEqual(await friends.requests("ben"), { incoming: [], outgoing: [] });
    assert.equal(await friends.hasRequest("ann", "ben"), false);
    assert.equal(await friends.acceptRequest(ANN, BEN), false, "used once");
    assert.equal(await friends.acceptRequest(CY, ANN), false, "never asked");
    assert.equal(await friends.request(CY, ANN, 10), "requested");
    assert.equal(await friends.dropRequest("cy", "ann"), true);
    assert.equal(await friends.dropRequest("cy", "ann"), false);
    await friends.request(CY, ANN, 10);
    await friends.request(ANN, CY, 10);
    await friends.clearRequests("ann");
    assert.deepEqual(await friends.requests("cy"), { incoming: [], outgoing: [] });
    assert.deepEqual(await friends.requests("ann"), { incoming: [], outgoing: [] });
  });

  test("friend requests: every change shows on both sides, after being read", async (t) => {
    const { friends } = t.store;
    const none = { incoming: [], outgoing: [] };
    // Read before each change, so that a store holding requests in memory has them.
    const read = () => Promise.all(["ann", "ben", "cy"].map((u) => friends.requests(u)));
    await read();
    assert.equal(await friends.request(ANN, BEN, 10), "requested");
    assert.deepEqual(await read(), [{ incoming: [], outgoing: [BEN] }, {
      incoming: [ANN],
      outgoing: [],
    }, none]);
    // A caller changing its copy changes nothing for the next caller.
    (await friends.requests("ben")).incoming.length = 0;
    assert.deepEqual((await friends.requests("ben")).incoming, [ANN]);
    assert.equal(await friends.dropRequest("ann", "ben"), true);
    assert.deepEqual(await read(), [none, none, none]);
    await friends.request(CY, ANN, 10);
    await read();
    assert.equal(await friends.acceptRequest(CY, ANN), true);
    assert.deepEqual(await read(), [none, none, none]);
    await friends.request(BEN, CY, 10);
    await friends.request(ANN, CY, 10);
    await read();
    await friends.clearRequests("cy");
    assert.deepEqual(await read(), [none, none, none]);
  });

  test("invitations: every change shows, after being read", async (t) => {
    const { invitations } = t.store;
    const limits = { perUser: 5, fromOne: 5 };
    const from = (g: number, who = ANN) => ({ group: g, groupName: `g${g}`, from: who });
    const groups = async (user: string) => (await invitations.list(user)).map((i) => i.group);
    assert.deepEqual(await groups("ben"), []);
    await invitations.add([BEN, CY], from(1), limits);
    assert.deepEqual(await groups("ben"), [1]);
    (await invitations.list("ben")).length = 0;
    assert.deepEqual(await groups("ben"), [1], "a caller's copy is its own");
    await invitations.add([BEN], from(2, CY), limits);
    assert.deepEqual(await groups("ben"), [1, 2]);
    await invitations.remove("ben", 1);
    assert.deepEqual(await groups("ben"), [2]);
    await invitations.removeFrom("ben", "cy");
    assert.deepEqual(await groups("ben"), []);
    assert.deepEqual(await groups("cy"), [1]);
    await invitations.clear("cy");
    assert.deepEqual(await groups("cy"), []);
  });

  test("friends and requests survive a restart", async (t) => {
    await t.store.friends.add(ANN, BEN);
    await t.store.friends.request(CY, ANN, 10);
    const { friends } = await t.reopen();
    assert.deepEqual(await friends.list("ben"), [ANN]);
    assert.deepEqual(await friends.requests("ann"), { incoming: [CY], outgoing: [] });
  });

  test("blocks: who blocked whom, answered either way, capped, cleared", async (t) => {
    const { blocks } = t.store;
    assert.equal((await blocks.either("ben")).size, 0);
    assert.equal(await blocks.add(ANN, BEN, 1), "added");
    assert.equal(await blocks.add(ANN, BEN, 1), "already");
    assert.equal(await blocks.add(ANN, CY, 1), "full");
    assert.deepEqual([...await blocks.either("ben")], ["ann"]);
    assert.deepEqual([...await blocks.either("ann")], ["ben"]);
    assert.equal(await blocks.blocked("ann", "ben"), true);
    assert.equal(await blocks.blocked("ben", "ann"), false);
    assert.deepEqual(await blocks.list("ann"), [BEN]);
    assert.deepEqual(await blocks.list("ben"), []);
    assert.equal(await blocks.remove("ann", "ben"), true);
    assert.equal(await blocks.remove("ann", "ben"), false);
    assert.equal((await blocks.either("ben")).size, 0);
    await blocks.add(BEN, CY, 5);
    await blocks.add(CY, ANN, 5);
    await blocks.clear("cy");
    assert.equal((await blocks.either("ann")).size, 0);
    assert.equal((await blocks.either("ben")).size, 0);
    assert.deepEqual(await blocks.list("cy"), []);
  });

  test("blocks survive a restart", async (t) => {
    await t.store.blocks.add(ANN, BEN, 5);
    const { blocks } = await t.reopen();
    assert.equal(await blocks.blocked("ann", "ben"), true);
    assert.deepEqual([...await blocks.either("ben")], ["ann"]);
  });

  test("invitations: capped per user and per inviter, listed in group order, dropped", async (t) => {
    const { invitations } = t.store;
    const limits = { perUser: 2, fromOne: 1 };
    const from = (g: number, who = ANN) => ({ group: g, groupName: `g${g}`, from: who });
    assert.deepEqual(await invitations.add([BEN, CY], from(3), limits), {
      invited: [BEN, CY],
      waiting: [],
      full: [],
    });
    assert.deepEqual(await invitations.add([BEN], from(3), limits), {
      invited: [],
      waiting: [BEN],
      full: [],
    });
    const more = await invitations.add([BEN], from(2), limits);
    assert.deepEqual(more, { invited: [], waiting: [], full: [BEN] }, "one from ann already");
    await invitations.add([BEN], from(1, CY), limits);
    assert.deepEqual((await invitations.add([BEN], from(4, CY), limits)).full, [BEN]);
    const listed = await invitations.list("ben");
    assert.deepEqual(listed.map((i) => [i.group, i.groupName, i.from.name]), [
      [1, "g1", "Cy"],
      [3, "g3", "Ann"],
    ]);
    assert.ok(listed[0].time instanceof Date);
    assert.equal((await invitations.get("ben", 3))?.from.user, "ann");
    assert.equal(await invitations.get("ben", 2), null);
    await invitations.removeFrom("ben", "ann");
    assert.equal(await invitations.get("ben", 3), null);
    assert.equal((await invitations.get("cy", 3))?.groupName, "g3", "only ben's went");
    assert.equal(await invitations.remove("ben", 1), true);
    assert.equal(await invitations.remove("ben", 1), false);
    await invitations.clear("cy");
    assert.deepEqual(await invitations.list("cy"), []);
  });

  test("invitations survive a restart", async (t) => {
    await t.store.invitations.add([BEN], { group: 5, groupName: "g", from: ANN }, {
      perUser: 5,
      fromOne: 5,
    });
    const { invitations } = await t.reopen();
    assert.equal((await invitations.get("ben", 5))?.from.name, "Ann");
  });

  test("groups: create with members; join, leave and lookups follow, after being read", async (t) => {
    const { groups } = t.store;
    // Read first, so that a store holding answers in memory has them.
    assert.deepEqual(await groups.groupsOf("ann"), []);
    assert.equal(await groups.countOf("ben"), 0);
    assert.equal(await groups.get(1), null);
    const g = await groups.create("book club", "ann", [ANN]);
    assert.equal(g.name, "book club");
    assert.equal(g.creator, "ann");
    assert.equal(g.size, 1);
    assert.deepEqual(await groups.get(g.id), g);
    assert.deepEqual((await groups.groupsOf("ann")).map((x) => x.name), ["book club"]);
    assert.equal(await groups.isMember(g.id, "ben"), false);
    assert.deepEqual(await groups.members(g.id), [ANN]);
    assert.equal(await groups.addMember(g.id, BEN, 10), "added");
    assert.equal(await groups.addMember(g.id, BEN, 10), "already_member");
    assert.equal(await groups.countOf("ben"), 1);
    assert.equal(await groups.isMember(g.id, "ben"), true);
    assert.equal((await groups.get(g.id))?.size, 2);
    assert.deepEqual(names(await groups.members(g.id)), ["Ann", "ben"]);
    // A caller changing its copy changes nothing for the next caller.
    (await groups.members(g.id)).length = 0;
    assert.equal((await groups.members(g.id)).length, 2);
    assert.deepEqual(await groups.removeMember(g.id, "ann"), [BEN], "those who remain");
    assert.deepEqual(await groups.groupsOf("ann"), []);
    assert.equal((await groups.get(g.id))?.size, 1);
    assert.deepEqual(await groups.removeMember(g.id, "ben"), []);
    assert.equal(await groups.get(g.id), null, "the group goes with its last member");
    assert.equal(await groups.countOf("ben"), 0);
    assert.equal(await groups.addMember(g.id, CY, 10), "no_group");
  });

  test("groups: ids are fresh, and a user's groups and count cover all of them", async (t) => {
    const { groups } = t.store;
    const a = await groups.create("a", "ann", [ANN, BEN]);
    const b = await groups.create("b", "ben", [BEN, CY]);
    assert.notEqual(a.id, b.id);
    assert.equal(b.size, 2);
    assert.deepEqual((await groups.groupsOf("ben")).map((g) => g.name).sort(), ["a", "b"]);
    assert.equal(await groups.countOf("ben"), 2);
    assert.equal(await groups.countOf("cy"), 1);
    await groups.removeMember(a.id, "ann");
    await groups.removeMember(a.id, "ben");
    const c = await groups.create("c", "cy", [CY]);
    assert.ok(c.id !== a.id && c.id !== b.id, "the id of a group that went is not given again");
  });

  test("groups: concurrent joins never pass the size limit", async (t) => {
    const { groups } = t.store;
    const g = await groups.create("race", "u0", people(1));
    const results = await Promise.all(
      people(11).slice(1).map((m) => groups.addMember(g.id, m, 4)),
    );
    assert.equal(results.filter((r) => r === "added").length, 3);
    assert.equal(results.filter((r) => r === "full").length, 7);
    const members = await groups.members(g.id);
    assert.equal(members.length, 4);
    assert.equal((await groups.get(g.id))?.size, 4);
    await Promise.all(members.map((m) => groups.removeMember(g.id, m.user)));
    assert.equal(await groups.get(g.id), null);
  });

  test("groups survive a restart, and new ids go on past the old ones", async (t) => {
    const g = await t.store.groups.create("kept", "ann", [ANN, BEN]);
    const { groups } = await t.reopen();
    assert.deepEqual(await groups.get(g.id), g);
    assert.equal(await groups.isMember(g.id, "ben"), true);
    assert.equal(await groups.countOf("ann"), 1);
    assert.notEqual((await groups.create("next", "cy", [CY])).id, g.id);
  });
}
