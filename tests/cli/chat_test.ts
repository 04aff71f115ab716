/** The terminal client end to end: real `parley` processes against a real server process. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { History } from "../../src/cli/history.ts";
import { newMessageId, ParleyClient } from "../../src/client/client.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { ChatProcess, fastConfig, run, ServerProcess, TtyProcess } from "../helpers/cli.ts";

interface World {
  dir: string;
  server: ServerProcess;
  env(user: string): Record<string, string>;
  chats: ChatProcess[];
  chat(user: string, ...flags: string[]): Promise<ChatProcess>;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-chat-" });
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir));
  const w: World = {
    dir,
    server,
    chats: [],
    env: (user) => ({
      PARLEY_CONFIG_DIR: join(dir, user, "config"),
      PARLEY_ACCEPT_NEW_KEY: "1", // pinning is tested in interaction_test.ts
      PARLEY_DATA_DIR: join(dir, user, "data"),
      PARLEY_PASSWORD: `password-${user}`,
    }),
    chat: async (user, ...flags) => {
      const c = ChatProcess.start(
        ["connect", w.server.addr, "--user", user, ...flags],
        w.env(user),
      );
      w.chats.push(c);
      await c.out.waitFor(new RegExp(`Logged in as ${user} `));
      return c;
    },
  };
  try {
    await fn(w);
  } finally {
    for (const c of w.chats) await c.kill();
    await w.server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("two users befriend, chat privately and in a group, and one gets the backlog on return", () =>
  withWorld(async (w) => {
    const alice = await w.chat("alice", "--register", "--accept-new-key");
    const bob = await w.chat("bob", "--register", "--accept-new-key");

    // A friend request, then its acceptance.
    await alice.type("/add bob");
    await alice.out.waitFor(/Asked bob to be your friend; you are friends once they add you too\./);
    await bob.out.waitFor(/alice asks to be your friend: \/add alice to accept/);
    await bob.type("/add alice");
    await bob.out.waitFor(/alice is now your friend \(online\)\./);
    await alice.out.waitFor(/bob accepted: you are friends now\./);

    await alice.type("/to bob", "hello bob");
    await bob.out.waitFor(/\[\d\d:\d\d\] @alice <alice> hello bob/);
    await alice.out.waitFor(/<alice> hello bob/);

    // Multi-line: a trailing backslash continues the message.
    await bob.type("/to alice", "hi alice\\", "  second line");
    await alice.out.waitFor(/<bob> hi alice\n\s+ {2}second line/);

    await alice.type("/create hikers bob");
    await alice.out.waitFor(/Created #(\d+) hikers with alice, bob\./);
    const id = (await bob.out.waitFor(/alice added you to #(\d+) hikers \(alice, bob\)\./))[1];
    await bob.type(`/to #${id}`, "group hello");
    await alice.out.waitFor(new RegExp(`<bob> group hello`));
    await bob.type("/members");
    await bob.out.waitFor(/● alice\n.*● bob/);

    // Bob leaves; alice writes to him while he is away.
    await bob.type("/quit");
    assert.equal((await bob.finish()).code, 0);
    await alice.out.waitFor(/bob went offline\./);
    await alice.type("/to bob", "are you there?", "ping me back");
    await alice.out.waitFor(/<alice> ping me back/);

    const back = await w.chat("bob");
    await back.out.waitFor(/2 messages arrived while you were away: @alice \(2\)\./);
    await back.type("/recent");
    await back.out.waitFor(/@alice \(2 new\)\s+\S+ <alice> ping me back/);
    // Local history survives the restart of the client: the whole conversation is there.
    await back.type("/to alice");
    await back.out.waitFor(
      /── @alice ──\n.*<alice> hello bob\n.*<bob> hi alice\n.*second line\n.*are you there\?\n.*ping me back/,
    );
    await back.type("/quit");
    assert.equal((await back.finish()).code, 0);
    for (const c of [alice, back]) {
      assert.ok(!c.out.text.includes("\x1b["), "no colour codes in a pipe");
    }
  }));

Deno.test("/block, /unblock, /blocks, /requests, /join and /decline in the real client", () =>
  withWorld(async (w) => {
    const away = await w.chat("alice", "--register");
    await away.type("/quit");
    await away.finish();
    const mallory = await w.chat("mallory", "--register");

    // A stranger's friend request and group adds wait for alice: she hears of them at login...
    await mallory.type("/create lure alice", "/add alice");
    await mallory.out.waitFor(/Invited alice: they join once they accept\.[^]*Asked alice/);
    const alice = await w.chat("alice");
    const lure = (await alice.out.waitFor(
      /Waiting for your answer: friend requests from mallory; invitations to #(\d+) lure\./,
    ))[1];
    // ...or at once when she is online; either way they are listed and answered.
    await mallory.type("/create bait alice");
    await mallory.out.waitFor(/Invited alice: they join once they accept\.[^]*Invited alice/);
    const bait = (await alice.out.waitFor(/mallory invites you to #(\d+) bait \(mallory\)/))[1];
    await alice.type("/requests");
    await alice.out.waitFor(
      new RegExp(
        `mallory asks to be your friend \\(/add mallory, /remove mallory\\)\n` +
          `.*mallory invites you to #${lure} lure \\(/join #${lure}, /decline #${lure}\\)`,
      ),
    );
    await alice.type(`/join #${lure}`);
    await alice.out.waitFor(new RegExp(`You joined #${lure} lure \\(alice, mallory\\)\\.`));
    await alice.type(`/decline #${bait}`);
    await alice.out.waitFor(new RegExp(`Declined the invitation to #${bait}\\.`));

    // A block: the blocked can no longer write, and is told why.
    await alice.type("/block mallory");
    await alice.out.waitFor(
      /Blocked mallory: no messages, requests, invitations, files or presence/,
    );
    await alice.type("/blocks");
    await alice.out.waitFor(/Blocked: mallory/);
    await alice.type("/requests");
    await alice.out.waitFor(/Nothing is waiting for your answer\./);
    await mallory.type("/to alice", "let me in");
    await mallory.out.waitFor(/Not sent to @alice: alice has blocked you/);
    await alice.type("/unblock mallory", "/blocks");
    await alice.out.waitFor(/Unblocked mallory\.\n.*You have blocked no one\./);
    await mallory.type("again?");
    await alice.out.waitFor(/@mallory <mallory> again\?/);
    for (const c of [alice, mallory]) {
      await c.type("/quit");
      assert.equal((await c.finish()).code, 0);
    }
  }));

Deno.test("parley send delivers one message and exits 0 only when acknowledged", () =>
  withWorld(async (w) => {
    const bob = await w.chat("bob", "--register", "--accept-new-key");
    await bob.type("/quit");
    await bob.finish();
    const reg = await run([
      "connect",
      w.server.addr,
      "--user",
      "alice",
      "--register",
      "--accept-new-key",
    ], {
      env: w.env("alice"),
      input: "/quit\n",
    });
    assert.equal(reg.code, 0, reg.stderr);

    const ok = await run([
      "send",
      "--to",
      "bob",
      "--user",
      "alice",
      "--server",
      w.server.addr,
      "from a script",
    ], {
      env: w.env("alice"),
    });
    assert.equal(ok.code, 0, ok.stderr);
    // Text from stdin, multi-line, and the server from the last one used.
    const piped = await run(["send", "--to", "bob", "--user", "alice"], {
      env: w.env("alice"),
      input: "line one\nline two\n",
    });
    assert.equal(piped.code, 0, piped.stderr);

    const unknown = await run(["send", "--to", "nobody", "--user", "alice", "hi"], {
      env: w.env("alice"),
    });
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.trim(), 'parley: There is no user named "nobody"');
    const usage = await run(["send", "--to", "bob", "--world", "--user", "alice", "hi"], {
      env: w.env("alice"),
    });
    assert.equal(usage.code, 2);
    const down = await run([
      "send",
      "--to",
      "bob",
      "--user",
      "alice",
      "--server",
      "127.0.0.1:1",
      "hi",
    ], {
      env: w.env("alice"),
    });
    assert.equal(down.code, 1);

    const back = await w.chat("bob");
    await back.out.waitFor(/2 messages arrived while you were away: @alice \(2\)\./);
    await back.type("/to alice");
    await back.out.waitFor(/<alice> from a script\n.*<alice> line one\n\s+line two/);
  }));

Deno.test("a kicked terminal session says so and exits", () =>
  withWorld(async (w) => {
    const first = await w.chat("carol", "--register", "--accept-new-key");
    const second = await w.chat("carol");
    await first.out.waitFor(/logged in from another place\. This session has ended\./);
    assert.equal((await first.child.status).code, 1);
    await second.type("/quit");
    assert.equal((await second.finish()).code, 0);
  }));

Deno.test("the client reconnects after the server restarts and sends what was typed meanwhile", () =>
  withWorld(async (w) => {
    const alice = await w.chat("alice", "--register", "--accept-new-key");
    const bob = await w.chat("bob", "--register", "--accept-new-key");
    await alice.type("/world", "hello from alice");
    await bob.out.waitFor(/<alice> hello from alice/);
    await alice.type("/to bob", "before");
    await bob.out.waitFor(/<alice> before/);
    const port = w.server.port;
    await w.server.stop("SIGKILL");
    await alice.out.waitFor(/Reconnecting in/);
    await alice.type("typed while the server was down");
    w.server = await ServerProcess.start(join(w.dir, "data"), join(w.dir, "config.json"), port);
    await alice.out.waitFor(/Reconnected\./, 30_000);
    await bob.out.waitFor(/Reconnected\./, 30_000);
    await bob.out.waitFor(/<alice> typed while the server was down/, 30_000);
    assert.equal(bob.out.text.match(/typed while the server was down/g)?.length, 1, "shown once");
    // Alice's own world message came back in the backlog when she resumed: kept once.
    let copies = 0;
    const logs = (await filesUnder(join(w.dir, "alice", "data", "history")))
      .filter((f) => f.endsWith(".jsonl"));
    for (const file of logs) {
      copies += (await Deno.readTextFile(file)).split("hello from alice").length - 1;
    }
    assert.equal(copies, 1, "alice's own world message is in her history once");
  }));

Deno.test("after a resume, the open conversation's backlog is shown, and only the rest counted", () =>
  withWorld(async (w) => {
    const others: ParleyClient[] = [];
    const sender = async (name: string) => {
      const c = await ParleyClient.connect({ ...hostPort(w.server.addr), knownHosts: null });
      others.push(c);
      await c.login(name, `password-${name}`);
      return c;
    };
    try {
      for (const name of ["alice", "carol"]) {
        const c = await ParleyClient.connect({ ...hostPort(w.server.addr), knownHosts: null });
        await c.register(name, `password-${name}`);
        c.close();
      }
      const bob = await w.chat("bob", "--register", "--accept-new-key");
      await bob.type("/to alice");
      await bob.out.waitFor(/alice/);
      const port = w.server.port;
      await w.server.stop("SIGKILL");
      // Bob's client waits 4 s before its next try: time to queue two messages for him.
      await bob.out.waitFor(/Reconnecting in 4 s/, 30_000);
      w.server = await ServerProcess.start(join(w.dir, "data"), join(w.dir, "config.json"), port);
      await (await sender("alice")).sendText({ user: "bob" }, "said while you were away");
      await (await sender("carol")).sendText({ user: "bob" }, "elsewhere meanwhile");
      await bob.out.waitFor(/Reconnected\./, 30_000);
      await bob.out.waitFor(/<alice> said while you were away/);
      await bob.out.waitFor(/1 message arrived while you were away: @carol \(1\)\./);
      assert.doesNotMatch(bob.out.text, /elsewhere meanwhile/, "carol's is counted, not shown");
    } finally {
      for (const c of others) c.close();
    }
  }));

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await filesUnder(path));
    else if (e.isFile) out.push(path);
  }
  return out;
}

Deno.test("images and files sent from the terminal are saved in the downloads folder, checked", () =>
  withWorld(async (w) => {
    const alice = await w.chat("alice", "--register", "--accept-new-key");
    const bob = await w.chat("bob", "--register", "--accept-new-key");
    const image = crypto.getRandomValues(new Uint8Array(50_000));
    image.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]); // a PNG by its first bytes
    const file = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    await Deno.writeFile(join(w.dir, "cat.png"), image);
    await Deno.writeFile(join(w.dir, "report.pdf"), file);

    // Images from friends are saved without asking (from others, see receive_test.ts).
    await alice.type("/add bob");
    await bob.out.waitFor(/alice asks to be your friend/);
    await bob.type("/add alice");
    await alice.out.waitFor(/bob accepted: you are friends now\./);
    await alice.type("/to bob", `/image ${join(w.dir, "cat.png")}`);
    const saved = (await bob.out.waitFor(/\[image\] cat\.png \(48\.8 KiB\) saved to (\S+)/))[1];
    assert.deepEqual(await Deno.readFile(saved), image);
    assert.ok(saved.startsWith(join(w.dir, "bob", "data", "downloads")));

    await alice.type(`/file ${join(w.dir, "report.pdf")}`);
    await bob.out.waitFor(/alice offers the file "report\.pdf" \(293\.0 KiB\)\. \/accept (\d+)/);
    await bob.type("/accept");
    const path = (await bob.out.waitFor(/Saved report\.pdf to (\S+): SHA-256 verified\./))[1];
    await alice.out.waitFor(/Sent report\.pdf to bob: SHA-256 verified\./);
    await alice.out.waitFor(/→ report\.pdf \[#+\] 100%/);
    assert.deepEqual(await Deno.readFile(path), file);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, "only bob can read it");
    }

    await alice.type(`/file ${join(w.dir, "report.pdf")}`);
    await bob.out.waitFor(/"report\.pdf" \(293\.0 KiB\)\. \/accept 2 or \/deny 2/);
    await bob.type("/deny");
    await alice.out.waitFor(/File not sent: bob declined the file/);
  }));

/** Registers alice and logs her out, then bob sends her 30 messages; their texts. */
async function backlogForAlice(w: World): Promise<string[]> {
  const alice = await w.chat("alice", "--register", "--accept-new-key");
  await alice.type("/quit");
  await alice.finish();
  const bob = await w.chat("bob", "--register", "--accept-new-key");
  const texts = Array.from({ length: 30 }, (_, i) => `waiting ${i}`);
  await bob.type("/to alice", ...texts);
  await bob.out.waitFor(/waiting 29/);
  await new Promise((r) => setTimeout(r, 300)); // SENT for the last ones
  return texts;
}

/** Alice's local history of her conversation with bob. */
async function aliceHistoryWithBob(w: World): Promise<string> {
  const files = await filesUnder(join(w.dir, "alice", "data", "history"));
  return await Deno.readTextFile(files.find((f) => f.endsWith("%40bob.jsonl"))!);
}

Deno.test("Ctrl-C while the backlog arrives keeps each message in the history once", () =>
  withWorld(async (w) => {
    const texts = await backlogForAlice(w);
    // Alice comes back and is interrupted as soon as she is logged in, while the backlog arrives:
    // twice at a terminal, where Ctrl-C is a key, and once without one, where it is SIGINT.
    for (let i = 0; i < 3; i++) {
      const args = ["connect", w.server.addr, "--user", "alice"];
      const c = i < 2
        ? TtyProcess.start(args, w.env("alice"))
        : ChatProcess.start(args, w.env("alice"));
      await c.out.waitFor(/Logged in as alice /);
      if (c instanceof TtyProcess) await c.keys("\x03");
      else c.child.kill("SIGINT");
      // Its exit status before its stdin closes: an end of input would be a quit, not Ctrl-C.
      assert.equal((await c.child.status).code, 130);
      await c.finish();
    }
    // Then she stays until the conversation shows the last one: every message once, none lost.
    const back = await w.chat("alice");
    await back.type("/to bob");
    await back.out.waitFor(/waiting 29/);
    await back.type("/quit");
    assert.equal((await back.finish()).code, 0);
    const log = await aliceHistoryWithBob(w);
    for (const text of texts) {
      assert.equal(log.split(`"${text}"`).length - 1, 1, `"${text}" is in the history once`);
    }
  }));

Deno.test("quitting while the backlog arrives keeps each message in the history once", () =>
  withWorld(async (w) => {
    const texts = await backlogForAlice(w);
    // Alice comes back and quits at once, twice: the backlog arrives while she quits.
    for (let i = 0; i < 2; i++) {
      const r = await run(["connect", w.server.addr, "--user", "alice"], {
        env: w.env("alice"),
        input: "/quit\n",
      });
      assert.equal(r.code, 0, r.stderr);
    }
    const log = await aliceHistoryWithBob(w).catch(() => "");
    for (const text of texts) {
      assert.ok(log.split(`"${text}"`).length - 1 <= 1, `"${text}" is in the history at most once`);
    }
  }));

Deno.test("a message recorded before the client died unacknowledged is acknowledged, not recorded twice", () =>
  withWorld(async (w) => {
    const alice = await w.chat("alice", "--register", "--accept-new-key");
    await alice.type("/quit");
    await alice.finish();
    const bob = await ParleyClient.connect({ ...hostPort(w.server.addr), knownHosts: null });
    try {
      await bob.register("bob", "password-bob");
      await bob.login("bob", "password-bob");
      const id = newMessageId();
      await bob.sendText({ user: "alice" }, "stored, not acknowledged", id);
      // Alice's client had recorded it and died before its ACK left: the server still has it.
      const history = await History.open(join(w.dir, "alice", "data"), w.server.addr, "alice");
      const entry = {
        id: id.toHex(),
        from: "bob",
        time: new Date().toISOString(),
        kind: "text" as const,
        text: "stored, not acknowledged",
      };
      await history.append("@bob", "@bob", entry, true);
      await history.remember("bob", id);
      for (let i = 0; i < 2; i++) {
        const back = await w.chat("alice");
        await back.type("/to bob");
        await back.out.waitFor(/stored, not acknowledged/);
        await back.type("/quit");
        assert.equal((await back.finish()).code, 0);
        const log = await aliceHistoryWithBob(w);
        assert.equal(log.split('"stored, not acknowledged"').length - 1, 1, "in the history once");
        assert.doesNotMatch(back.out.text, /arrived while you were away/);
      }
      // Acknowledged at the first start: nothing waits for her on the server.
      const check = await ParleyClient.connect({ ...hostPort(w.server.addr), knownHosts: null });
      try {
        await check.login("alice", "password-alice");
        const init = await check.nextEvent(MsgType.INITIALIZE);
        assert.equal((init.body as { pending: number }).pending, 0);
      } finally {
        check.close();
      }
    } finally {
      bob.close();
    }
  }));

function hostPort(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(":");
  return { host: addr.slice(0, at), port: Number(addr.slice(at + 1)) };
}

Deno.test("a line typed after a /to that fails goes nowhere, not to the world room, and is shown whole", () =>
  withWorld(async (w) => {
    const bob = await w.chat("bob", "--register");
    await bob.type("/world");
    await bob.out.waitFor(/── world ──/);
    const alice = await w.chat("alice", "--register");
    await alice.type("/world");
    await alice.out.waitFor(/── world ──/);
    // Typed together: the private line is read while /to still waits for the server.
    await alice.type("/to nosuchuser", "my secret for nobody", "/image /nonexistent.png");
    await alice.out.waitFor(/There is no user named "nosuchuser"/);
    // Typed once the failure is shown, but fast: no conversation is open any more, so it goes
    // nowhere either, and the prompt says so.
    await alice.out.waitFor(/No conversation is open now/);
    await alice.type("typed after the failure");
    await alice.out.waitFor(
      /Not sent: "typed after the failure" \(no conversation is open: \/to NAME, \/to #ID or \/world\)\./,
    );
    await alice.type("/world", "in the world again");
    await bob.out.waitFor(/<alice> in the world again/);
    assert.ok(!bob.out.text.includes("secret"), bob.out.text);
    assert.ok(!bob.out.text.includes("typed after the failure"), bob.out.text);
    assert.ok(!alice.out.text.includes("<alice> my secret"), alice.out.text);
    assert.match(
      alice.out.text,
      /Not sent: "my secret for nobody" \(the \/to before it failed\)\./,
    );
    assert.match(
      alice.out.text,
      /Not sent: "\/image \/nonexistent\.png" \(the \/to before it failed\)/,
    );

    // A line typed while a /to that succeeds waits goes to the conversation it opens.
    await alice.type("/to bob", "for bob only");
    await bob.out.waitFor(/@alice <alice> for bob only/);
  }));

Deno.test("piped input: a line after a /to that fails is not sent, and the client says so", () =>
  withWorld(async (w) => {
    const bob = await w.chat("bob", "--register");
    await bob.type("/world");
    await bob.out.waitFor(/── world ──/);
    const r = await run(["connect", w.server.addr, "--user", "alice", "--register"], {
      env: w.env("alice"),
      input: "/world\n/to nosuchuser\nhi nobody\n/world\nbye\n",
    });
    assert.equal(r.code, 0, r.stderr);
    await bob.out.waitFor(/<alice> bye/);
    assert.ok(!bob.out.text.includes("hi nobody"), bob.out.text);
    assert.match(r.stdout, /Not sent: "hi nobody" \(the \/to before it failed\)\./);
  }));

/** Alice sends bob a 200 MiB file (large enough to be cut midway on a fast machine): at 10–89 %. */
async function midTransfer(w: World): Promise<{ alice: ChatProcess; bob: ChatProcess }> {
  const alice = await w.chat("alice", "--register");
  const bob = await w.chat("bob", "--register");
  const big = join(w.dir, "big.bin");
  const chunk = new Uint8Array(1024 * 1024).map((_, i) => i & 0xff);
  using f = await Deno.open(big, { write: true, create: true });
  for (let i = 0; i < 200; i++) await f.write(chunk);
  await alice.type("/to bob", `/file ${big}`);
  await bob.out.waitFor(/alice offers the file "big\.bin" \(200\.0 MiB\)/);
  await bob.type("/accept");
  await bob.out.waitFor(/← big\.bin \[#*\.+\]\s+[1-8]\d%/);
  return { alice, bob };
}

Deno.test("a file transfer cut off midway leaves no file under its name, and says so", () =>
  withWorld(async (w) => {
    const { alice, bob } = await midTransfer(w);
    await alice.kill();
    await bob.out.waitFor(/File big\.bin not received: .*\n/);
    const downloads = join(w.dir, "bob", "data", "downloads");
    assert.deepEqual(await filesUnder(downloads), [], "neither big.bin nor big.bin.part");
    assert.match(bob.out.text, /File big\.bin not received: .*\. The part received was removed\./);
  }));

Deno.test("a receiver who quits midway keeps no part of the file", () =>
  withWorld(async (w) => {
    const { bob } = await midTransfer(w);
    await bob.type("/quit");
    assert.equal((await bob.finish()).code, 0);
    const downloads = join(w.dir, "bob", "data", "downloads");
    assert.deepEqual(await filesUnder(downloads), [], "neither big.bin nor big.bin.part");
    assert.match(
      bob.out.text,
      /alice-big\.bin\.part was not finished: the part received was removed\./,
    );
  }));

Deno.test("parley send with the message on stdin wants PARLEY_PASSWORD, refused before connecting", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-send-" });
  try {
    // A closed port: a client that connected first would say no server is listening.
    const args = ["send", "--user", "alice", "--group", "1", "--server", "127.0.0.1:1"];
    const env = { PARLEY_CONFIG_DIR: join(dir, "config"), PARLEY_DATA_DIR: join(dir, "data") };
    const r = await run(args, { env, input: "multi-line\nreport\n" });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      "parley: The message is read from stdin, so the password cannot be: set PARLEY_PASSWORD, " +
        "or give the message as TEXT",
    );
    // With the message as TEXT, stdin's first line is the password, as before.
    const text = await run([...args, "hello"], { env, input: "password-alice\n" });
    assert.equal(text.code, 1);
    assert.match(text.stderr, /127\.0\.0\.1:1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/file and /image refuse a folder, an empty file and a device before offering or reading it", () =>
  withWorld(async (w) => {
    const alice = await w.chat("alice", "--register");
    const bob = await w.chat("bob", "--register");
    const folder = join(w.dir, "tester-p");
    await Deno.mkdir(folder);
    await Deno.writeFile(join(folder, "inside.txt"), new Uint8Array(4096));
    const empty = join(w.dir, "empty.txt");
    await Deno.writeFile(empty, new Uint8Array());
    await alice.type("/to bob", `/file ${folder}`, `/file ${empty}`, "/file /dev/null");
    await alice.out.waitFor(new RegExp(`${folder} is a folder, not a file`));
    await alice.out.waitFor(/Nothing to send: "empty\.txt" is empty/);
    await alice.out.waitFor(/\/dev\/null is not a file \(a device or a pipe\)/);
    // A file after them is offered: the refusals came first and offered nothing.
    await Deno.writeTextFile(join(w.dir, "real.txt"), "content");
    await alice.type(`/file ${join(w.dir, "real.txt")}`);
    await bob.out.waitFor(/alice offers the file "real\.txt"/);
    assert.doesNotMatch(alice.out.text, /Offering (tester-p|empty|null)/);
    assert.doesNotMatch(bob.out.text, /offers the file "(tester-p|empty\.txt|null)"/);

    // /image of an endless device is refused at once, not read into memory without end.
    await alice.type("/image /dev/zero");
    await alice.out.waitFor(/\/dev\/zero is not a file \(a device or a pipe\)/, 5_000);
    const sent = await run(
      ["send", "--server", w.server.addr, "--user", "alice", "--to", "bob", "--image", "/dev/zero"],
      { env: w.env("alice") },
    );
    assert.equal(sent.code, 1);
    assert.match(sent.stderr, /\/dev\/zero is not a file \(a device or a pipe\)/);
  }));

Deno.test("parley send --server does not change the server a plain parley uses; connect does", () =>
  withWorld(async (w) => {
    const other = await ServerProcess.start(join(w.dir, "other"), await fastConfig(w.dir));
    try {
      const env = w.env("alice");
      const lastServer = () => Deno.readTextFile(join(env.PARLEY_CONFIG_DIR, "last_server"));
      for (const addr of [other.addr, w.server.addr]) {
        const r = await run(["connect", addr, "--user", "alice", "--register"], {
          env,
          input: "/quit\n",
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await lastServer()).trim(), addr, "connect remembers its server");
      }
      const sent = await run(
        ["send", "--server", other.addr, "--user", "alice", "--to", "alice", "a note"],
        { env },
      );
      assert.equal(sent.code, 0, sent.stderr);
      assert.equal((await lastServer()).trim(), w.server.addr);
    } finally {
      await other.stop();
    }
  }));
