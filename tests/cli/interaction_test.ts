/**
 * The terminal client meeting mistakes and trouble: unknown server keys, what the server would
 * refuse, quitting while the link is down, password prompts, usage mistakes. Real `parley`
 * processes (on a pseudo-terminal where a person's terminal matters) against a real server.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatProcess, fastConfig, run, ServerProcess, TtyProcess } from "../helpers/cli.ts";

interface World {
  dir: string;
  server: ServerProcess;
  env(user: string, extra?: Record<string, string>): Record<string, string>;
  chat(user: string, ...flags: string[]): Promise<ChatProcess>;
  /** On a pseudo-terminal, with env(user) unless `env` is given. */
  tty(user: string, args: string[], env?: Record<string, string>): TtyProcess;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-ui-" });
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir));
  const children: { kill(): Promise<void> }[] = [];
  const env = (user: string, extra: Record<string, string> = {}) => ({
    PARLEY_CONFIG_DIR: join(dir, user, "config"),
    PARLEY_DATA_DIR: join(dir, user, "data"),
    PARLEY_PASSWORD: `password-${user}`,
    ...extra,
  });
  const w: World = {
    dir,
    server,
    env,
    chat: async (user, ...flags) => {
      const c = ChatProcess.start(
        ["connect", w.server.addr, "--user", user, "--accept-new-key", ...flags],
        env(user),
      );
      children.push(c);
      await c.out.waitFor(new RegExp(`Logged in as ${user} `));
      return c;
    },
    tty: (user, args, given) => {
      const t = TtyProcess.start(args, given ?? env(user));
      children.push(t);
      return t;
    },
  };
  try {
    await fn(w);
  } finally {
    for (const c of children) await c.kill();
    await w.server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

async function register(w: World, user: string): Promise<void> {
  const r = await run(
    ["connect", w.server.addr, "--user", user, "--register", "--accept-new-key"],
    { env: w.env(user), input: "/quit\n" },
  );
  assert.equal(r.code, 0, r.stderr);
}

/** The environment of a person typing the password: no PARLEY_PASSWORD. */
function typing(w: World, user: string): Record<string, string> {
  const env = w.env(user);
  delete (env as Record<string, string | undefined>).PARLEY_PASSWORD;
  return env;
}

/** Alice, at a terminal, with bob's conversation open (both registered). */
async function aliceTalkingToBob(w: World): Promise<TtyProcess> {
  await register(w, "bob");
  await register(w, "alice");
  const alice = w.tty("alice", ["connect", w.server.addr, "--user", "alice"]);
  await alice.out.waitFor(/Logged in as alice /);
  await alice.keys("/to bob\r");
  await alice.out.waitFor(/── @bob ──/);
  return alice;
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("a new server's key is trusted only when the user says so or --accept-new-key is given", () =>
  withWorld(async (w) => {
    // A script: refused before any password goes out, with the flag named.
    const refused = await run(["connect", w.server.addr, "--user", "alice", "--register"], {
      env: w.env("alice"),
      input: "/quit\n",
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not met before; its key fingerprint is SHA256:/);
    assert.match(refused.stderr, /--accept-new-key/);
    assert.ok(refused.stderr.includes(w.server.fingerprint));
    assert.equal(await exists(join(w.dir, "alice", "config", "known_hosts")), false);
    assert.doesNotMatch(w.server.out.text, /user\.registered|login/);
    // The environment variable does what the flag does.
    const scripted = await run(["connect", w.server.addr, "--user", "alice", "--register"], {
      env: w.env("alice", { PARLEY_ACCEPT_NEW_KEY: "1" }),
      input: "/quit\n",
    });
    assert.equal(scripted.code, 0, scripted.stderr);
    assert.match(scripted.stdout, /First contact with .*; pinned\./);

    // A person: shown the fingerprint and asked; "no" (the default) refuses.
    const no = w.tty("bob", ["connect", w.server.addr, "--user", "bob", "--register"]);
    await no.out.waitFor(/Its key fingerprint is SHA256:\S+\.[\s\S]*Trust this key\? \[y\/N\] /);
    await no.keys("\r");
    assert.equal((await no.finish()).code, 1);
    assert.match(no.out.text, /Not connected: the key of .* was not trusted/);
    assert.equal(await exists(join(w.dir, "bob", "config", "known_hosts")), false);
    const yes = w.tty("bob", ["connect", w.server.addr, "--user", "bob", "--register"]);
    await yes.out.waitFor(/Trust this key\? \[y\/N\] /);
    await yes.keys("y\r");
    await yes.out.waitFor(/Pinned the key of [\s\S]*Logged in as bob /);
    await yes.keys("/quit\r");
    assert.equal((await yes.finish()).code, 0);
  }));

Deno.test("a 100 KB paste at a terminal is refused at once, and the client goes on", () =>
  withWorld(async (w) => {
    const alice = await aliceTalkingToBob(w);
    const started = Date.now();
    // Drawn a key at a time, this took minutes and wrote gigabytes to the terminal.
    await alice.keys("x".repeat(100_000) + "\r");
    await alice.out.waitFor(/Not sent: Text messages are limited to 16384 bytes/, 10_000);
    const ms = Date.now() - started;
    assert.ok(ms < 5000, `the paste took ${ms} ms`);
    assert.ok(alice.out.text.length < 10_000_000, `${alice.out.text.length} bytes drawn`);
    await alice.keys("still here\r");
    await alice.out.waitFor(/<alice> still here/);
    await alice.keys("/quit\r");
    assert.equal((await alice.finish()).code, 0);
  }));

Deno.test("SIGTERM and SIGHUP end the client as Ctrl-C does, with 128 + the signal", () =>
  withWorld(async (w) => {
    await register(w, "alice");
    for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
      const c = await w.chat("alice");
      await c.out.waitFor(/-- \d+ friends/); // the chat has begun
      c.child.kill(signal);
      const status = await c.child.status;
      // Exited by itself (the terminal given back on the way), not killed by the signal.
      assert.deepEqual([status.code, status.signal], [code, null]);
      await c.finish();
    }
    // Before the chat has begun (here at the password prompt): it exits at once, by itself.
    const env = { ...w.env("newcomer"), PARLEY_ACCEPT_NEW_KEY: "1" };
    delete (env as Record<string, string>).PARLEY_PASSWORD;
    const c = ChatProcess.start(["connect", w.server.addr, "--user", "newcomer"], env);
    await c.out.waitFor(/pinned/);
    c.child.kill("SIGTERM");
    const status = await c.child.status;
    assert.deepEqual([status.code, status.signal], [143, null]);
    await c.finish();
  }));

Deno.test("the client refuses what the server would refuse, with the limit, and stays connected", () =>
  withWorld(async (w) => {
    const alice = await w.chat("alice", "--register");
    await w.chat("bob", "--register");
    const big = join(w.dir, "big.png");
    const bytes = new Uint8Array(5 * 1024 * 1024);
    bytes.set(PNG);
    await Deno.writeFile(big, bytes); // over the server's frame limit (4 MiB)
    await Deno.writeFile(join(w.dir, "notes.png"), new TextEncoder().encode("just text"));
    await Deno.writeFile(join(w.dir, "empty.png"), new Uint8Array(0));

    await alice.type("/to bob", `/image ${big}`);
    await alice.out.waitFor(
      /Not sent: Images are limited to 2\.0 MiB \(2097152 bytes\) on this server; "big\.png" has 5\.0 MiB \(5242880 bytes\)/,
    );
    await alice.type(`/image ${join(w.dir, "notes.png")}`);
    await alice.out.waitFor(/"notes\.png" is not an image \(PNG, JPEG, GIF or WebP\)/);
    await alice.type(`/image ${join(w.dir, "empty.png")}`);
    await alice.out.waitFor(/Nothing to send: "empty\.png" is empty/);
    await alice.type(`/image ${join(w.dir, "missing.png")}`);
    await alice.out.waitFor(/No such file: .*missing\.png/);
    await alice.type("x".repeat(20_000));
    await alice.out.waitFor(/Text messages are limited to 16384 bytes on this server; this one/);
    await alice.type("still here");
    await alice.out.waitFor(/<alice> still here/);
    await alice.type("/quit");
    assert.equal((await alice.finish()).code, 0);
    assert.doesNotMatch(alice.out.text, /Reconnecting/);

    // parley send --image says the same, and only the size check needs the server.
    const send = (file: string) =>
      run(["send", "--to", "bob", "--user", "alice", "--image", join(w.dir, file)], {
        env: w.env("alice"),
      });
    const tooBig = await send("big.png");
    assert.equal(tooBig.code, 1);
    assert.match(tooBig.stderr, /Images are limited to 2\.0 MiB \(2097152 bytes\) on this server/);
    assert.match((await send("notes.png")).stderr, /"notes\.png" is not an image/);
    assert.match((await send("missing.png")).stderr, /parley: No such file: /);
    assert.match((await send("empty.png")).stderr, /Nothing to send: "empty\.png" is empty/);
    assert.doesNotMatch(w.server.out.text, /frame/i);
  }));

Deno.test("quitting works while the link is down and a message waits: /quit and Ctrl-D", () =>
  withWorld(async (w) => {
    await register(w, "bob");
    const alice = await w.chat("alice", "--register");
    const tty2 = w.tty("bob", ["connect", w.server.addr, "--user", "bob"]);
    await tty2.out.waitFor(/Logged in as bob /);
    // Conversations open while connected (the server checks the name).
    await alice.type("/to bob");
    await alice.out.waitFor(/── @bob ──/);
    await tty2.keys("/to alice\r");
    await tty2.out.waitFor(/── @alice ──/);

    await w.server.stop("SIGKILL");
    await alice.out.waitFor(/Reconnecting in/);
    await tty2.out.waitFor(/Reconnecting in/);
    await alice.type("waiting for the server");
    await alice.out.waitFor(/Offline: the message will go when the connection is back/);
    const quitAt = Date.now();
    await alice.type("/quit");
    assert.equal((await alice.finish()).code, 0);
    assert.ok(Date.now() - quitAt < 5000, `quit took ${Date.now() - quitAt} ms`);
    assert.match(alice.out.text, /1 message not sent: no connection\./);

    await tty2.keys("queued\r");
    await tty2.out.waitFor(/Offline: the message will go/);
    await tty2.keys("\x04"); // Ctrl-D
    assert.equal((await tty2.finish()).code, 0);
    assert.match(tty2.out.text, /1 message not sent: no connection\./);
  }));

Deno.test("Ctrl-C leaves the half-typed line and ends it, so the shell's prompt starts a new line", () =>
  withWorld(async (w) => {
    await register(w, "alice");
    const tty = w.tty("alice", ["connect", w.server.addr, "--user", "alice"]);
    await tty.out.waitFor(/Logged in as alice /);
    await tty.keys("half typed");
    await tty.out.waitFor(/> half typed$/);
    await tty.keys("\x03");
    assert.equal((await tty.finish()).code, 130);
    assert.ok(tty.out.text.endsWith("\r\n"), JSON.stringify(tty.out.text.slice(-40)));
    assert.equal(tty.screen().filter((l) => l !== "").at(-1), "> half typed^C");
  }));

Deno.test("Backspace removes a whole emoji (a ZWJ sequence), and the progress bar redraws one line", () =>
  withWorld(async (w) => {
    await register(w, "alice");
    const bob = await w.chat("bob", "--register");
    const tty = w.tty("alice", ["connect", w.server.addr, "--user", "alice"]);
    await tty.out.waitFor(/Logged in as alice /);
    await tty.keys("/to bob\r");
    await tty.out.waitFor(/@bob> $/);
    await tty.keys("family 👩‍👩‍👧");
    await tty.keys("\x7f");
    await tty.keys("!\r");
    await bob.out.waitFor(/<alice> family !/);

    const file = new Uint8Array(2 * 1024 * 1024).map((_, i) => i & 0xff);
    await Deno.writeFile(join(w.dir, "report.bin"), file);
    await tty.keys(`/file ${join(w.dir, "report.bin")}\r`);
    await bob.out.waitFor(/\/accept (\d+)/);
    await bob.type("/accept");
    await tty.out.waitFor(/Sent report\.bin to bob: SHA-256 verified\./);
    const bars = tty.screen().filter((l) => l.includes("→ report.bin ["));
    assert.equal(bars.length, 1, bars.join("\n"));
    assert.match(bars[0], /100%/);
  }));

Deno.test("/passwd asks for the new password twice, and no answer reaches the conversation", () =>
  withWorld(async (w) => {
    const alice = await w.chat("alice", "--register");
    const bob = await w.chat("bob", "--register");
    await alice.type("/to bob", "hello");
    await bob.out.waitFor(/<alice> hello/);
    // A typo in the repeat: asked again; the habit's third line is a password, not a message.
    await alice.type("/passwd", "password-alice", "new-password-1", "new-passwrd-1");
    await alice.out.waitFor(/The passwords do not match\./);
    await alice.type("new-password-1", "new-password-1");
    await alice.out.waitFor(/Password changed\./);
    await alice.type("after");
    await bob.out.waitFor(/<alice> after/);
    assert.doesNotMatch(bob.out.text, /password/);
    assert.doesNotMatch(alice.out.text, /<alice> .*password/);
    // The change revoked the old resume token: the session resumes with the one it was given.
    const port = w.server.port;
    await w.server.stop();
    w.server = await ServerProcess.start(join(w.dir, "data"), join(w.dir, "config.json"), port);
    await alice.out.waitFor(/Reconnected\./, 30_000);
    // Bob back too, so that the message reaches him live, not in a backlog he is only told of.
    await bob.out.waitFor(/Reconnected\./, 30_000);
    await alice.type("after a restart");
    await bob.out.waitFor(/<alice> after a restart/, 30_000);
    assert.doesNotMatch(alice.out.text, /no longer accepts this session/);

    const send = (password: string) =>
      run(["send", "--to", "bob", "--user", "alice", "hi"], {
        env: { ...w.env("alice"), PARLEY_PASSWORD: password },
      });
    assert.equal((await send("new-password-1")).code, 0);
    assert.equal((await send("password-alice")).code, 1);
  }));

Deno.test("a wrong password is asked again, and registration says the minimum before asking twice", () =>
  withWorld(async (w) => {
    await register(w, "alice");
    const tty = w.tty("alice", ["connect", w.server.addr, "--user", "alice"], typing(w, "alice"));
    await tty.out.waitFor(/Password: $/);
    await tty.keys("not-the-password\r");
    await tty.out.waitFor(/Wrong password; try again\.[\s\S]*Password: $/);
    await tty.keys("password-alice\r");
    await tty.out.waitFor(/Logged in as alice /);
    await tty.keys("/quit\r");
    assert.equal((await tty.finish()).code, 0);

    const newbie = w.tty("carol", [
      "connect",
      w.server.addr,
      "--user",
      "carol",
      "--accept-new-key",
    ], typing(w, "carol"));
    await newbie.out.waitFor(/Password: $/);
    await newbie.keys("short\r");
    await newbie.out.waitFor(/Create it\? \[y\/N\] $/);
    await newbie.keys("y\r");
    await newbie.out.waitFor(
      /at least 8 characters\.[\s\S]*Passwords need at least 8 characters; that one has 5\.[\s\S]*New password: $/,
    );
    assert.doesNotMatch(newbie.out.text, /Repeat password/);
    await newbie.keys("long-enough-1\r");
    await newbie.out.waitFor(/Repeat password: $/);
    await newbie.keys("long-enough-1\r");
    await newbie.out.waitFor(/Registered carol\.[\s\S]*Logged in as carol /);
    await newbie.keys("/quit\r");
    assert.equal((await newbie.finish()).code, 0);
    assert.doesNotMatch(newbie.out.text, /short|long-enough/, "passwords are not echoed");
  }));

Deno.test("plain parley offers the last username used on the server", () =>
  withWorld(async (w) => {
    await register(w, "alice");
    // No server, no user: both remembered; an empty answer takes the offered name.
    const r = await run([], { env: w.env("alice"), input: "\n/quit\n" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Logged in as alice on /);
    const tty = w.tty("alice", []);
    await tty.out.waitFor(/Username \[alice\]: $/);
    await tty.keys("\r");
    await tty.out.waitFor(/Logged in as alice /);
    await tty.keys("/quit\r");
    assert.equal((await tty.finish()).code, 0);
  }));

Deno.test("usage mistakes and refusals read as sentences, and the backlog is announced once", () =>
  withWorld(async (w) => {
    await register(w, "bob");
    await register(w, "carol");
    for (const text of ["one", "two", "three"]) {
      const r = await run(["send", "--to", "bob", "--user", "carol", text], {
        env: w.env("carol"),
      });
      assert.equal(r.code, 0, r.stderr);
    }
    const bob = await w.chat("bob");
    await bob.out.waitFor(/3 messages arrived while you were away: @carol \(3\)\./);
    assert.doesNotMatch(bob.out.text, /on the way/);

    await bob.type("/who 2");
    await bob.out.waitFor(/There is no page 2: 1 online fit on 1 page/);
    await bob.type("/who x");
    await bob.out.waitFor(/Usage: \/who \[PAGE\], PAGE from 1/);
    await bob.type("/to carol", "/history abc");
    await bob.out.waitFor(/Usage: \/history \[N\], N from 1 to 1000/);
    await bob.type("/history -3");
    await bob.out.waitFor(/Usage: \/history \[N\][^\n]*\n[\s\S]*Usage: \/history \[N\]/);
    await bob.type("/to carl");
    await bob.out.waitFor(/There is no user named "carl"/);
    await bob.type("/to CAROL");
    await bob.out.waitFor(/── @carol ──/);
    await bob.type("/to #99");
    await bob.out.waitFor(/You are not in a group #99; \/groups lists yours/);
    assert.doesNotMatch(bob.out.text, /── #99/);
    await bob.type("/accept 7", "/add nobody");
    await bob.out.waitFor(/No file offer 7 is waiting/);
    await bob.out.waitFor(/There is no user named "nobody"/);
    assert.doesNotMatch(bob.out.text, /\([A-Z_]{4,}\)|NO_SUCH|BAD_REQUEST/);
  }));

Deno.test("parley send at a terminal asks for the password, hidden, and reads the message until Ctrl-D", () =>
  withWorld(async (w) => {
    await register(w, "bob");
    await register(w, "alice");
    const send = w.tty(
      "alice",
      ["send", "--server", w.server.addr, "--user", "alice", "--to", "bob"],
      typing(w, "alice"),
    );
    await send.out.waitFor(/Password: $/);
    await send.keys("password-alice\r");
    await send.keys("first line\rsecond line\r\x04");
    assert.equal((await send.finish()).code, 0, send.out.text);
    assert.doesNotMatch(send.out.text, /password-alice/, "the password is not echoed");
    const bob = await run(["connect", w.server.addr, "--user", "bob"], {
      env: w.env("bob"),
      input: "/to alice\n/quit\n",
    });
    assert.match(bob.stdout, /<alice> first line\n\s+second line/);
  }));

Deno.test("Ctrl-C while a command waits says which typed messages were not sent", () =>
  withWorld(async (w) => {
    const alice = await aliceTalkingToBob(w);
    w.server.child.kill("SIGSTOP"); // a server that stops answering
    try {
      await alice.keys("/who\r");
      await alice.keys("typed while who waits\r");
      await alice.keys("\x03");
      assert.equal((await alice.finish()).code, 130);
      assert.match(
        alice.out.text,
        /Not sent: "typed while who waits" \(typed before quitting, while a command waited\)\./,
      );
    } finally {
      w.server.child.kill("SIGCONT");
    }
  }));

Deno.test("a line typed in one go with /passwd at a terminal is dropped, not taken as the password", () =>
  withWorld(async (w) => {
    const alice = await aliceTalkingToBob(w);
    await alice.keys("/passwd\rtyped-ahead chat line\r");
    await alice.out.waitFor(/What was typed right after \/passwd was dropped/);
    await alice.out.waitFor(/Current password: $/);
    await alice.keys("password-alice\r");
    await alice.out.waitFor(/New password: $/);
    await alice.keys("new-password-1\r");
    await alice.out.waitFor(/Repeat password: $/);
    await alice.keys("new-password-1\r");
    await alice.out.waitFor(/Password changed\./);
    await alice.keys("/quit\r");
    assert.equal((await alice.finish()).code, 0);
    assert.doesNotMatch(alice.out.text, /typed-ahead chat line\r?\n.*<alice>/);
  }));
