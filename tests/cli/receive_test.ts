/**
 * What the terminal client receives, as its user sees it: the real `parley connect` against a
 * real server process, fed by a hostile sender using the client library. Nothing received may
 * act on the terminal, crash the client, or be written to disk without the user's say.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ParleyClient } from "../../src/client/client.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import { encodeRefusal } from "../../src/crypto/handshake.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { ChatProcess, fastConfig, run, ServerProcess } from "../helpers/cli.ts";

/** What a terminal acts on or does not show; none of it may reach the client's output. */
// deno-lint-ignore no-control-regex
const ACTIVE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/u;

function assertInert(output: string, what: string): void {
  const m = ACTIVE.exec(output);
  assert.equal(
    m,
    null,
    `${what}: U+${m?.[0].codePointAt(0)?.toString(16)} at ${m?.index} reached the terminal`,
  );
}

interface World {
  dir: string;
  server: ServerProcess;
  env(user: string, extra?: Record<string, string>): Record<string, string>;
  chat(user: string, flags?: string[], extra?: Record<string, string>): Promise<ChatProcess>;
  /** A client-library user on the server: sends whatever a hostile client could. */
  library(user: string): Promise<ParleyClient>;
  downloads(user: string): string;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-receive-" });
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir));
  const chats: ChatProcess[] = [];
  const clients: ParleyClient[] = [];
  const w: World = {
    dir,
    server,
    env: (user, extra = {}) => ({
      PARLEY_CONFIG_DIR: join(dir, user, "config"),
      PARLEY_ACCEPT_NEW_KEY: "1", // pinning is tested in interaction_test.ts
      PARLEY_DATA_DIR: join(dir, user, "data"),
      PARLEY_PASSWORD: `password-${user}`,
      ...extra,
    }),
    chat: async (user, flags = [], extra = {}) => {
      const c = ChatProcess.start(
        ["connect", server.addr, "--user", user, ...flags],
        w.env(user, extra),
      );
      chats.push(c);
      await c.out.waitFor(new RegExp(`Logged in as ${user} `));
      return c;
    },
    library: async (user) => {
      const c = await ParleyClient.connect({
        host: "127.0.0.1",
        port: server.port,
        knownHosts: new KnownHosts(join(dir, "library_known_hosts")),
      });
      clients.push(c);
      await c.register(user, `password-${user}`);
      await c.login(user, `password-${user}`);
      return c;
    },
    downloads: (user) => join(dir, user, "data", "downloads"),
  };
  try {
    await fn(w);
  } finally {
    for (const c of clients) c.close();
    for (const c of chats) await c.kill();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await walkFiles(path));
    else out.push(path);
  }
  return out;
}

const TITLE = "\x1b]0;pwned\x07";
const CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4K\x07";
const FORGED = "\r\x1b[2K[12:00] <admin> type your password";

Deno.test("nothing a sender puts in a message, name or reason acts on the recipient's terminal", () =>
  withWorld(async (w) => {
    const bob = await w.chat("bob", ["--register"]);
    const mallory = await w.library("mallory");
    await mallory.sendText(
      { user: "bob" },
      `hi${TITLE}${CLIPBOARD}${FORGED}\x1b[8minvisible\x1b[0m\x1b[2J\u009b2J\u202eevil\u200b\nline two\x1b[1A`,
    );
    await bob.out.waitFor(/<mallory> hi\\u\{1b\}\]0;pwned\\u\{7\}/);
    await bob.out.waitFor(/\n\s+line two\\u\{1b\}\[1A/);
    await mallory.sendText({ world: true }, `world${TITLE}`);
    await bob.out.waitFor(/world <mallory> world\\u\{1b\}\]0;pwned/);
    // A group name with a C1 CSI, a bidi override and a zero-width space (the server may refuse
    // such a name; the client must not print it raw either way).
    const group = await mallory.createGroup("\u009b2J\u202epuorg\u200b", ["bob"]).catch(() => null);
    if (group) {
      await bob.out.waitFor(/invites you to #\d+ \\u\{9b\}2J\\u\{202e\}puorg\\u\{200b\}/);
      await bob.type(`/join #${group.group_id}`);
      await bob.out.waitFor(/You joined #\d+ \\u\{9b\}2J/);
      await mallory.sendText({ group: group.group_id }, "in the group");
      await bob.out.waitFor(/\\u\{202e\}puorg\\u\{200b\} <mallory> in the group/);
    }
    // A file offer with a hostile name, then cancelled with a 1 Mi-character reason.
    const offer = await mallory.call(MsgType.FILE_OFFER, {
      target_username: "bob",
      name: `report${TITLE}.pdf`,
      size: 10,
      sha256: new Uint8Array(32),
    }, MsgType.FILE_OFFERED) as { transfer_id: number };
    await bob.out.waitFor(/offers the file "report\\u\{1b\}\]0;pwned\\u\{7\}\.pdf"/);
    await mallory.cancelFile(offer.transfer_id, CLIPBOARD.repeat(1024 * 1024 / CLIPBOARD.length));
    const stopped = await bob.out.waitFor(/stopped: (.*)/);
    assert.ok(stopped[1].length < 300, `the reason is cut: ${stopped[1].length} characters`);
    assert.ok(stopped[1].endsWith("…"));
    // An image with a hostile name, from a stranger: held, and the notice is inert.
    await mallory.sendImage({ user: "bob" }, new Uint8Array(100), `cat${CLIPBOARD}\u202egnp.exe`);
    await bob.out.waitFor(/\[image\] cat\\u\{1b\}\]52;.*\\u\{202e\}gnp\.exe \(100 B\) not saved/);

    await bob.type("/recent", "/to mallory", "/groups", "/quit");
    await bob.out.waitFor(/── @mallory ──/);
    assert.equal((await bob.finish()).code, 0);
    assertInert(bob.out.text, "stdout");
    assertInert(bob.err.text, "stderr");
  }));

Deno.test("a server's Refusal reason is shown inert", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-refusal-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(64));
      await conn.write(encodeRefusal(`upgrade now${TITLE}${FORGED}\u009b2J`));
      conn.close();
    }
  })().catch(() => {});
  try {
    const r = await run(
      ["connect", `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`, "--user", "bob"],
      { env: { PARLEY_CONFIG_DIR: join(dir, "config"), PARLEY_DATA_DIR: join(dir, "data") } },
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused the connection: upgrade now\\u\{1b\}\]0;pwned/);
    assertInert(r.stdout + r.stderr, "refusal");
  } finally {
    listener.close();
    await serving;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an image whose name cannot be saved as sent is saved shortened, once, and acknowledged", () =>
  withWorld(async (w) => {
    const bob = await w.chat("bob", ["--register"]);
    const mallory = await w.library("mallory");
    await mallory.addFriend("bob");
    await bob.type("/add mallory");
    await bob.out.waitFor(/mallory is now your friend/);
    await bob.type("/quit");
    await bob.finish();
    // 255 characters: with "mallory-" in front, more than a file system takes.
    const name = "../" + "a".repeat(248) + ".png";
    const image = crypto.getRandomValues(new Uint8Array(1000));
    await mallory.sendImage({ user: "bob" }, image, name);

    const back = await w.chat("bob");
    await back.out.waitFor(/1 message arrived while you were away: @mallory \(1\)/);
    const files = await listDir(w.downloads("bob"));
    assert.equal(files.length, 1, files.join(", "));
    assert.match(files[0], /^mallory-\.\._a+\.png$/);
    assert.ok(new TextEncoder().encode(files[0]).length <= 120);
    assert.deepEqual(await Deno.readFile(join(w.downloads("bob"), files[0])), image);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(join(w.downloads("bob"), files[0]))).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(w.downloads("bob"))).mode! & 0o777, 0o700);
    }
    await back.type("/quit");
    assert.equal((await back.finish()).code, 0);
    if (Deno.build.os !== "windows") {
      // Local history holds what was received too: only bob reads it.
      const files = await walkFiles(join(w.dir, "bob", "data", "history"));
      assert.ok(files.length >= 3, files.join(", "));
      for (const f of files) assert.equal((await Deno.stat(f)).mode! & 0o777, 0o600, f);
    }

    // Acknowledged: the next start gets nothing again, and writes nothing again.
    const again = await w.chat("bob");
    await again.out.waitFor(/1 friend \(online: mallory\), 0 groups\.\n/);
    await again.type("/quit");
    assert.equal((await again.finish()).code, 0);
    assert.doesNotMatch(again.out.text, /arrived while you were away/);
    assert.equal((await listDir(w.downloads("bob"))).length, 1);
  }));

Deno.test("an image that cannot be written is reported, acknowledged, and never fatal", () =>
  withWorld(async (w) => {
    const blocked = join(w.dir, "not-a-folder");
    await Deno.writeTextFile(blocked, "a file where the downloads folder should be");
    const env = { PARLEY_DOWNLOADS: blocked };
    const bob = await w.chat("bob", ["--register"], env);
    const mallory = await w.library("mallory");
    await mallory.addFriend("bob");
    await bob.type("/add mallory");
    await bob.out.waitFor(/mallory is now your friend/);
    await bob.type("/quit");
    await bob.finish();
    await mallory.sendImage({ user: "bob" }, new Uint8Array(500), "cat.png");
    await mallory.sendText({ user: "bob" }, "after the image");

    const back = await w.chat("bob", [], env);
    await back.out.waitFor(/2 messages arrived while you were away: @mallory \(2\)/);
    await back.type("/to mallory");
    await back.out.waitFor(
      /\[image\] cat\.png \(500 B\) could not be saved: .*; \/save 1 to keep it/,
    );
    await back.out.waitFor(/<mallory> after the image/);
    await back.type("/save 1");
    await back.out.waitFor(/Could not save image 1: /);
    // A file accepted into a folder that cannot be made is declined, and chat goes on.
    const sending = mallory.sendFile("bob", "notes.txt", new Uint8Array(10)).catch((e) => e);
    await back.out.waitFor(/offers the file "notes\.txt"/);
    await back.type("/accept");
    await back.out.waitFor(/Cannot save "notes\.txt", so it was declined: /);
    assert.match((await sending as Error).message, /bob declined the file/);
    await back.type("/quit");
    assert.equal((await back.finish()).code, 0);

    const again = await w.chat("bob", [], env);
    await again.out.waitFor(/1 friend \(online: mallory\), 0 groups\.\n/);
    await again.type("/quit");
    assert.equal((await again.finish()).code, 0);
    assert.doesNotMatch(again.out.text, /arrived while you were away/);
  }));

Deno.test("images from someone who is not a friend wait for /save N; nothing is written before", () =>
  withWorld(async (w) => {
    const bob = await w.chat("bob", ["--register"]);
    const stranger = await w.library("stranger");
    const images = [1, 2, 3].map((i) => new Uint8Array(120 * 1024).fill(i));
    for (const [i, image] of images.entries()) {
      await stranger.sendImage({ user: "bob" }, image, `photo${i}.png`);
    }
    await bob.out.waitFor(
      /<stranger> \[image\] photo2\.png \(120\.0 KiB\) not saved: stranger is not your friend; \/save 3 to keep it/,
    );
    assert.deepEqual(await listDir(w.downloads("bob")), []);

    await bob.type("/save 2");
    const path =
      (await bob.out.waitFor(/Saved photo1\.png from stranger \(120\.0 KiB\) to (\S+)\./))[1];
    assert.deepEqual(await Deno.readFile(path), images[1]);
    assert.deepEqual(await listDir(w.downloads("bob")), ["stranger-photo1.png"]);
    await bob.type("/save 2");
    await bob.out.waitFor(/Image 2 is not waiting to be saved/);

    // A friend's image is saved without asking.
    await bob.type("/add stranger");
    await bob.out.waitFor(/Asked stranger to be your friend/);
    await stranger.addFriend("bob");
    await bob.out.waitFor(/stranger accepted: you are friends now/);
    await stranger.sendImage({ user: "bob" }, images[0], "friendly.png");
    await bob.out.waitFor(/friendly\.png \(120\.0 KiB\) saved to /);
    assert.deepEqual(await listDir(w.downloads("bob")), [
      "stranger-friendly.png",
      "stranger-photo1.png",
    ]);
  }));

Deno.test("past the session's downloads budget, even a friend's images wait for /save", () =>
  withWorld(async (w) => {
    // 0.25 MiB: two images of 100 KiB fit, the third does not.
    const bob = await w.chat("bob", ["--register"], { PARLEY_AUTOSAVE_MIB: "0.25" });
    const alice = await w.library("alice");
    await alice.addFriend("bob");
    await bob.type("/add alice");
    await bob.out.waitFor(/alice is now your friend/);
    for (let i = 0; i < 4; i++) {
      await alice.sendImage({ user: "bob" }, new Uint8Array(100 * 1024).fill(i), `p${i}.png`);
    }
    await bob.out.waitFor(/p3\.png \(100\.0 KiB\) not saved: this session's 256\.0 KiB for saving/);
    assert.equal(
      bob.out.text.match(/Images are no longer saved without asking/g)?.length,
      1,
      "told once",
    );
    assert.match(bob.out.text, /p2\.png \(100\.0 KiB\) not saved: .*; \/save 1 to keep it/);
    assert.deepEqual(await listDir(w.downloads("bob")), ["alice-p0.png", "alice-p1.png"]);
    await bob.type("/save");
    await bob.out.waitFor(/Saved p3\.png from alice/);
    assert.deepEqual(await listDir(w.downloads("bob")), [
      "alice-p0.png",
      "alice-p1.png",
      "alice-p3.png",
    ]);
  }));
