/**
 * What one sender can make the server store: a group message's content once, a share of each
 * recipient's inbox, a budget of bytes in the store and per minute; and groups of the
 * documented maximum size. Real TCP, a real KV file.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { join } from "node:path";
import { HASH } from "../helpers/password_hash.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { openKvStore } from "../../src/store/kv_store.ts";
import { rejects } from "../helpers/assert.ts";
import { pattern } from "../helpers/content.ts";
import { withServer } from "../helpers/server.ts";

async function dirBytes(path: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(path)) {
    if (e.isFile) n += (await Deno.stat(join(path, e.name))).size;
  }
  return n;
}

Deno.test("CREATE_G with 500 members works, and ten 48 KiB images to it store each image once", () =>
  withServer(async (t) => {
    await t.user("alice");
    await t.user("last");
    // 498 accounts straight into the store: registering them one by one is not what is tested.
    await t.closeClients();
    await t.server.close();
    const store = await openKvStore(t.config.dataDir);
    const names = Array.from({ length: 498 }, (_, i) => `m${i}`);
    for (const name of names) {
      assert.ok(await store.users.create({ name, password: HASH, created: new Date() }));
    }
    await store.close();
    await t.restart();
    const owner = await t.connect();
    await owner.login("alice", "password-alice");
    const group = await owner.createGroup("everyone", [...names, "last"]);
    assert.equal(group.group_members.length, 500);
    assert.equal((await owner.members(group.group_id)).length, 500);
    await rejects(owner.invite(group.group_id, "m0"), ErrorCode.ALREADY_MEMBER);

    const before = await dirBytes(t.config.dataDir);
    const images = Array.from({ length: 10 }, (_, i) => pattern(48 * 1024, i + 1));
    for (const image of images) {
      const sent = await owner.sendImage({ group: group.group_id }, image);
      assert.equal(sent.skipped, undefined);
    }
    const grown = await dirBytes(t.config.dataDir) - before;
    // As copies in every member's row this was 237 MiB (×507 the 0.47 MiB sent).
    assert.ok(grown < 8 * 1024 * 1024, `the data dir grew by ${grown} bytes`);
    // A member gets them all, whole, after a restart.
    await t.restart();
    const last = await t.connect();
    await last.login("last", "password-last");
    for (const image of images) {
      const pass = (await last.nextEvent(MsgType.PASS)).body as { data: Uint8Array };
      assert.deepEqual(pass.data, image);
    }
  }, { groups: { inviteNeedsConsent: false } }));

Deno.test("a sender who fills their share of an offline victim's inbox is refused; others still reach the victim", () =>
  withServer(async (t) => {
    const mallory = await t.user("mallory");
    const alice = await t.user("alice");
    const victim = await t.user("victim");
    await victim.logout();
    const image = pattern(40_000, 3);
    // queue.maxMessages 8 with a 25 % share: 2 messages from any one sender.
    await mallory.sendImage({ user: "victim" }, image);
    await mallory.sendImage({ user: "victim" }, image);
    const refused = await rejects(
      mallory.sendImage({ user: "victim" }, image),
      ErrorCode.QUEUE_FULL,
    );
    assert.match(refused.message, /victim has too many undelivered messages from you/);
    await alice.sendText({ user: "victim" }, "still there?");
    // In a group, the victim is skipped for Mallory only.
    const g = await mallory.createGroup("trap", ["victim", "alice"]);
    const skipped = await mallory.sendText({ group: g.group_id }, "again");
    assert.deepEqual(skipped.skipped, ["victim"]);
    const fine = await alice.sendText({ group: g.group_id }, "hello");
    assert.equal(fine.skipped, undefined);
    const back = await t.connect();
    await back.login("victim", "password-victim");
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = (await back.nextEvent(MsgType.PASS)).body as { source_username: string };
      got.push(p.source_username);
    }
    assert.deepEqual(got, ["mallory", "mallory", "alice", "alice"]);
  }, { queue: { maxMessages: 8, senderSharePercent: 25 }, groups: { inviteNeedsConsent: false } }));

Deno.test("SEND past a sender's budget of stored bytes gets OUTBOX_FULL; past the store's, STORE_FULL", () =>
  withServer(async (t) => {
    const a = await t.user("ann");
    const b = await t.user("ben");
    const c = await t.user("cat");
    const bob = await t.user("bob");
    await bob.logout();
    const image = pattern(8000, 5);
    // 20,000 bytes per sender: two 8,000-byte images and not a third.
    await a.sendImage({ user: "bob" }, image);
    await a.sendImage({ user: "bob" }, image);
    const outbox = await rejects(a.sendImage({ user: "bob" }, image), ErrorCode.OUTBOX_FULL);
    assert.match(outbox.message, /Your undelivered messages/);
    // 36,000 bytes in all: b's two fit beside a's, c's does not.
    await b.sendImage({ user: "bob" }, image);
    await b.sendImage({ user: "bob" }, image);
    const store = await rejects(c.sendImage({ user: "bob" }, image), ErrorCode.STORE_FULL);
    assert.match(store.message, /store for undelivered messages is full/);
    // Delivered messages give the room back.
    const back = await t.connect();
    await back.login("bob", "password-bob");
    for (let i = 0; i < 4; i++) await back.nextEvent(MsgType.PASS);
    await back.ping(); // its ACKs are in
    await waitFor(() => c.sendImage({ user: "bob" }, image));
  }, {
    limits: { maxImageBytes: 8192, maxTextBytes: 1000 },
    queue: { maxSenderBytes: 20_000, maxTotalBytes: 36_000, senderSharePercent: 100 },
  }));

Deno.test("SEND past a sender's bytes per minute gets SENDING_TOO_FAST until the server's clock has refilled it; other senders are not held up", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const a = await t.user("ann");
      const b = await t.user("ben");
      await t.user("bob");
      const image = pattern(40_000, 6);
      // 65,536 bytes a minute: the second image takes the bucket below zero, the third waits.
      await a.sendImage({ user: "bob" }, image);
      await a.sendImage({ user: "bob" }, image);
      const fast = await rejects(a.sendImage({ user: "bob" }, image), ErrorCode.SENDING_TOO_FAST);
      assert.match(
        fast.message,
        /more than 65536 bytes of messages in the last minute; try again in \d+ s/,
      );
      await b.sendImage({ user: "bob" }, image);
      // The wait the server gave, rounded up to a second: just short of it, still refused.
      const seconds = Number(/try again in (\d+) s/.exec(fast.message)![1]);
      clock.advance((seconds - 1) * 1000);
      await rejects(a.sendImage({ user: "bob" }, image), ErrorCode.SENDING_TOO_FAST);
      clock.advance(1000);
      await a.sendImage({ user: "bob" }, image);
    },
    { queue: { senderBytesPerMinute: 65_536 } },
    { clock },
  );
});

/** Retries `send` while the server has not yet counted out what was acknowledged. */
async function waitFor(send: () => Promise<unknown>): Promise<void> {
  for (let i = 0;; i++) {
    try {
      await send();
      return;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
