/** The contract of users, resume tokens and invite codes. */

import assert from "node:assert/strict";
import { type ContractTest, HASH } from "./harness.ts";

const user = (name: string) => ({ name, password: HASH, created: new Date() });

export function accountsContract(test: ContractTest): void {
  test("users.create() is case-insensitively unique and keeps the display form", async (t) => {
    const { users } = t.store;
    assert.equal(await users.create(user("Zoe")), true);
    assert.equal(await users.create(user("ZOE")), false);
    assert.equal((await users.get("zoe"))?.name, "Zoe");
    assert.deepEqual((await users.get("zOE"))?.password, HASH);
    assert.equal(await users.get("zo"), null);
  });

  test("users refuse a look-alike name and name its owner; remove() frees it", async (t) => {
    const { users } = t.store;
    assert.equal(await users.create(user("zoe")), true);
    assert.equal(await users.create(user("z0e")), false);
    assert.equal(await users.lookalike("Z0E"), "zoe");
    assert.equal(await users.lookalike("yan"), null);
    assert.equal(await users.remove("zoe"), true);
    assert.equal(await users.remove("zoe"), false);
    assert.equal(await users.get("zoe"), null);
    assert.equal(await users.lookalike("z0e"), null);
    assert.equal(await users.create(user("z0e")), true);
  });

  test("users.setPassword() replaces the hash and reports unknown users", async (t) => {
    const { users } = t.store;
    await users.create(user("yan"));
    const next = { ...HASH, hash: new Uint8Array(32).fill(9) };
    const stamp = await users.setPassword("YAN", next);
    assert.equal(typeof stamp, "string");
    assert.deepEqual((await users.get("yan"))?.password.hash, next.hash);
    assert.equal((await users.get("yan"))?.passwordStamp, stamp);
    assert.equal(await users.setPassword("nobody", next), null);
  });

  test("a password's stamp is new with each account and password, and kept by a rehash", async (t) => {
    const { users } = t.store;
    await users.create(user("yan"));
    await users.create(user("xia"));
    const first = (await users.get("yan"))?.passwordStamp;
    assert.equal(typeof first, "string", "create() gives a stamp");
    assert.notEqual((await users.get("xia"))?.passwordStamp, first);
    // The same password hashed at a higher cost: the stamp stays.
    const stronger = { ...HASH, N: HASH.N * 2, hash: new Uint8Array(32).fill(7) };
    assert.equal(await users.rehash("Yan", HASH, stronger), true);
    assert.deepEqual((await users.get("yan"))?.password, stronger);
    assert.equal((await users.get("yan"))?.passwordStamp, first);
    // A rehash from a hash the record no longer has (the password changed meanwhile) writes
    // nothing.
    const other = { ...HASH, hash: new Uint8Array(32).fill(8) };
    assert.equal(await users.rehash("yan", HASH, other), false);
    assert.deepEqual((await users.get("yan"))?.password, stronger);
    assert.equal(await users.rehash("nobody", HASH, other), false);
    // A new password: a new stamp; an account made again under the name: a new one too.
    const second = await users.setPassword("yan", other);
    assert.notEqual(second, first);
    await users.remove("yan");
    await users.create(user("yan"));
    const third = (await users.get("yan"))?.passwordStamp;
    assert.ok(third !== first && third !== second);
    // An imported record keeps its stamp.
    assert.equal(await users.create({ ...user("wen"), passwordStamp: "s1" }), true);
    assert.equal((await users.get("wen"))?.passwordStamp, "s1");
  });

  test("users, their new passwords and removals survive a restart", async (t) => {
    await t.store.users.create(user("Yan"));
    await t.store.users.create(user("xia"));
    await t.store.users.setPassword("yan", { ...HASH, hash: new Uint8Array(32).fill(9) });
    await t.store.users.remove("xia");
    const { users } = await t.reopen();
    assert.equal((await users.get("yan"))?.name, "Yan");
    assert.deepEqual((await users.get("yan"))?.password.hash, new Uint8Array(32).fill(9));
    assert.equal(await users.get("xia"), null);
    assert.equal(await users.create(user("YAN")), false, "still taken after the restart");
  });

  test("tokens expire on the store's clock; revokeFamily() ends one family", async (t) => {
    const { tokens } = t.store;
    const a = await tokens.issue("xia", 60_000, 10);
    assert.equal(a.token.length, 32);
    assert.equal((await tokens.familyOf(a.token))?.user, "xia");
    const short = await tokens.issue("xia", 30_000, 10);
    assert.equal(short.expires.getTime(), t.clock.wall() + 30_000, "the expiry is on the clock");
    t.clock.advance(29_999);
    assert.equal((await tokens.familyOf(short.token))?.user, "xia", "alive until it expires");
    t.clock.advance(1);
    assert.equal(await tokens.familyOf(short.token), null, "an expired token must not resume");
    assert.equal((await tokens.resume(short.token, 60_000)).kind, "unknown");
    assert.equal((await tokens.familyOf(a.token))?.user, "xia", "a longer-lived one still works");
    await tokens.revokeFamily("xia", a.family);
    assert.equal(await tokens.familyOf(a.token), null);
    assert.equal((await tokens.resume(a.token, 60_000)).kind, "unknown");
    assert.equal((await tokens.resume(new Uint8Array(32), 60_000)).kind, "unknown");
  });

  test("tokens keep at most maxPerUser families, dropping the oldest; revokeAll() ends all", async (t) => {
    const { tokens } = t.store;
    const issued = [];
    for (let i = 0; i < 5; i++) issued.push(await tokens.issue("wu", 60_000 + i, 3));
    const alive = [];
    for (const x of issued) alive.push((await tokens.familyOf(x.token)) !== null);
    assert.deepEqual(alive, [false, false, true, true, true]);
    const other = await tokens.issue("vera", 60_000, 3);
    await tokens.revokeAll("wu");
    for (const x of issued) assert.equal(await tokens.familyOf(x.token), null);
    assert.equal((await tokens.familyOf(other.token))?.user, "vera");
  });

  test("tokens.resume() rotates: the new token works, the replaced one only in the grace", async (t) => {
    const { tokens } = t.store;
    const first = await tokens.issue("ula", 60_000, 16);
    const r1 = await tokens.resume(first.token, 60_000);
    assert.equal(r1.kind, "ok");
    if (r1.kind !== "ok") return;
    assert.notDeepEqual(r1.token, first.token, "RESUME must hand out a new token");
    assert.equal(r1.family.id, first.family);
    assert.equal(r1.family.user, "ula");
    assert.equal(r1.family.expires.getTime(), first.expires.getTime(), "rotation must not extend");
    // The successor was lost: the replaced token still works once, within the grace...
    const r2 = await tokens.resume(first.token, 60_000);
    assert.equal(r2.kind, "ok");
    if (r2.kind !== "ok") return;
    // ...and the lost successor is now a replaced token: presenting it is reuse.
    assert.equal((await tokens.resume(r1.token, 60_000)).kind, "reused");
    assert.equal(await tokens.familyOf(r2.token), null, "reuse must end the whole family");
    assert.equal((await tokens.resume(r2.token, 60_000)).kind, "unknown");
  });

  test("tokens.resume() takes a replaced token past the grace as reuse; only revokeAll() moves the epoch", async (t) => {
    const { tokens } = t.store;
    const first = await tokens.issue("una", 60_000, 16);
    const before = tokens.epoch("una");
    const r1 = await tokens.resume(first.token, 0);
    assert.equal(r1.kind, "ok");
    if (r1.kind !== "ok") return;
    // A thief resumed with the leaked token; the owner comes back with it (or the reverse).
    const reused = await tokens.resume(first.token, 0);
    assert.equal(reused.kind, "reused");
    if (reused.kind === "reused") assert.equal(reused.family.id, first.family);
    assert.equal((await tokens.resume(r1.token, 0)).kind, "unknown", "the thief's token ended");
    // Other devices' RESUMEs under way must not fail because one family ended.
    assert.equal(tokens.epoch("una"), before, "one family's end leaves the user's epoch");
    await tokens.revokeAll("una");
    assert.ok(tokens.epoch("una") > before, "revoking every token moves the user's epoch");
  });

  test("tokens.resume() counts the grace for a replaced token on the store's clock", async (t) => {
    const { tokens } = t.store;
    const first = await tokens.issue("uma", 3_600_000, 16);
    assert.equal((await tokens.resume(first.token, 60_000)).kind, "ok");
    t.clock.advance(59_999);
    const r2 = await tokens.resume(first.token, 60_000);
    assert.equal(r2.kind, "ok", "within the grace");
    if (r2.kind !== "ok") return;
    t.clock.advance(1);
    assert.equal((await tokens.resume(first.token, 60_000)).kind, "reused", "past the grace");
    assert.equal(await tokens.familyOf(r2.token), null);
  });

  test("tokens.issue() keeps one family per device, and a family that does not rotate keeps its token", async (t) => {
    const { tokens } = t.store;
    const device = new Uint8Array(16).fill(7);
    const a = await tokens.issue("tao", 60_000, 16, { device });
    const b = await tokens.issue("tao", 60_000, 16, { device });
    assert.equal(await tokens.familyOf(a.token), null, "the device's earlier token must end");
    const fb = await tokens.familyOf(b.token);
    assert.equal(fb?.id, b.family);
    assert.deepEqual(fb?.device, device);
    const other = await tokens.issue("tao", 60_000, 16, { device: new Uint8Array(16).fill(8) });
    assert.equal(
      (await tokens.familyOf(other.token))?.id,
      other.family,
      "another device keeps its",
    );
    // The same device id under another user is another family.
    const sam = await tokens.issue("sam", 60_000, 16, { device });
    assert.notEqual(sam.family, b.family);
    assert.ok(await tokens.familyOf(b.token));
    const old = await tokens.issue("tao", 60_000, 16, { rotates: false });
    assert.equal((await tokens.familyOf(old.token))?.rotates, false);
    const r = await tokens.resume(old.token, 60_000);
    assert.equal(r.kind, "ok");
    if (r.kind === "ok") assert.deepEqual(r.token, old.token, "it keeps its token");
    assert.equal((await tokens.resume(old.token, 60_000)).kind, "ok", "again and again");
  });

  test("tokens survive a restart, and a rotated one is still the only current one", async (t) => {
    const first = await t.store.tokens.issue("rui", 60_000, 16);
    const r1 = await t.store.tokens.resume(first.token, 0);
    assert.equal(r1.kind, "ok");
    if (r1.kind !== "ok") return;
    const revoked = await t.store.tokens.issue("rui", 60_000, 16);
    await t.store.tokens.revokeFamily("rui", revoked.family);
    const { tokens } = await t.reopen();
    assert.equal((await tokens.familyOf(r1.token))?.id, first.family);
    assert.equal(await tokens.familyOf(revoked.token), null);
    assert.equal((await tokens.resume(first.token, 0)).kind, "reused");
  });

  test("invites: valid until they expire on the clock, taken once, given back", async (t) => {
    const { invites } = t.store;
    const record = await invites.add("abcde-12345", 60_000);
    assert.equal(record.expires.getTime(), t.clock.wall() + 60_000);
    await invites.add("fghij-67890", 60_000);
    assert.equal(await invites.valid("zzzzz-00000"), false);
    assert.equal(await invites.take("zzzzz-00000"), null);
    t.clock.advance(59_999);
    assert.equal(await invites.valid("ABCDE 12345"), true, "case and separators do not count");
    const taken = await invites.take("abcde-12345");
    assert.deepEqual(taken, record);
    assert.equal(await invites.valid("abcde-12345"), false, "used");
    assert.equal(await invites.take("abcde-12345"), null, "taken once");
    await invites.giveBack("abcde-12345", taken!);
    assert.equal(await invites.valid("abcde-12345"), true, "given back");
    t.clock.advance(1);
    assert.equal(await invites.valid("abcde-12345"), false, "expired");
    assert.equal(await invites.take("fghij-67890"), null, "an expired code cannot be taken");
    await invites.giveBack("abcde-12345", record);
    assert.equal(await invites.valid("abcde-12345"), false, "an expired code is not given back");
  });

  test("invites survive a restart; a taken one stays taken", async (t) => {
    await t.store.invites.add("abcde-12345", 60_000);
    await t.store.invites.add("fghij-67890", 60_000);
    await t.store.invites.take("fghij-67890");
    const { invites } = await t.reopen();
    assert.equal(await invites.valid("abcde-12345"), true);
    assert.equal(await invites.take("fghij-67890"), null);
  });
}
