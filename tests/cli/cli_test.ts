/** The real CLI as child processes: help, errors, serve, connect, kick, key change, shutdown. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { VERSION } from "../../src/version.ts";
import { fastConfig, Output, parley, run, ServerProcess } from "../helpers/cli.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "parley-cli-" });
}

Deno.test("parley --help and --version print and exit 0", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /parley serve/);
  assert.match(help.stdout, /parley connect HOST:PORT/);
  const version = await run(["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), `parley ${VERSION}`);
  for (const sub of ["serve", "connect", "send"]) {
    const r = await run([sub, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`Usage: parley ${sub}`));
  }
});

Deno.test("bad flags and bad config give one sentence and exit code 2", async () => {
  const dir = await tempDir();
  try {
    const cases: [string[], RegExp][] = [
      [["serve", "--bogus"], /Unknown option '--bogus'/],
      [["serve", "--port", "abc"], /--port "abc" is not a number/],
      [["serve", "--port", "70000"], /"port" must be a whole number from 0 to 65535/],
      [["frobnicate"], /Unknown command "frobnicate"/],
      [["connect", "a:b:c"], /not an address/],
      [["serve", "--config", join(dir, "missing.json")], /Cannot read config file/],
    ];
    await Deno.writeTextFile(join(dir, "bad.json"), '{"limits": {"nope": 1}}');
    cases.push([["serve", "--config", join(dir, "bad.json")], /unknown setting "limits.nope"/]);
    await Deno.writeTextFile(join(dir, "broken.json"), "{not json");
    cases.push([["serve", "--config", join(dir, "broken.json")], /is not valid JSON/]);
    for (const [args, pattern] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}, stderr ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(
        r.stderr.trim().split("\n").length,
        1,
        `one line for ${args.join(" ")}: ${r.stderr}`,
      );
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    }
    // No server remembered: the sentence says how this command takes one.
    const noServer = await run(["send", "--to", "bob", "--user", "alice", "hi"], {
      env: { PARLEY_CONFIG_DIR: join(dir, "fresh") },
    });
    assert.equal(noServer.code, 2, noServer.stderr);
    assert.match(noServer.stderr, /Give a server address: --server HOST:PORT or \$PARLEY_SERVER/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve, then connect registers, logs in and logs out; users survive a restart", async () => {
  const dir = await tempDir();
  const config = await fastConfig(dir);
  const env = { PARLEY_CONFIG_DIR: join(dir, "client"), PARLEY_PASSWORD: "s3cret-pass" };
  let server = await ServerProcess.start(join(dir, "data"), config);
  try {
    const first = await run([
      "connect",
      server.addr,
      "--user",
      "Alice",
      "--register",
      "--accept-new-key",
    ], {
      env,
      input: "/logout\n",
    });
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      new RegExp(
        `First contact with ${server.addr}\\. Its key fingerprint is ${escape(server.fingerprint)}`,
      ),
    );
    assert.match(first.stdout, /Registered Alice\./);
    assert.match(first.stdout, /Logged in as Alice on /);

    assert.match(first.stdout, /Logged out Alice\./);

    const wrong = await run(["connect", server.addr, "--user", "alice"], {
      env: { ...env, PARLEY_PASSWORD: "not the password" },
      input: "/quit\n",
    });
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr.trim(), "parley: Wrong password");

    const status = await server.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.match(server.out.text, /server\.stopped/);
    server = await ServerProcess.start(join(dir, "data"), config, server.port);
    // Password from stdin (not a terminal), and the pinned key is still the server's key.
    const again = await run(["connect", server.addr, "--user", "alice"], {
      env: { PARLEY_CONFIG_DIR: env.PARLEY_CONFIG_DIR },
      input: "s3cret-pass\n/logout\n",
    });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /First contact/);
    assert.match(again.stdout, /Logged in as Alice on /);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a kicked terminal session says so and exits", async () => {
  const dir = await tempDir();
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir));
  const env = { PARLEY_CONFIG_DIR: join(dir, "client"), PARLEY_PASSWORD: "s3cret-pass" };
  try {
    const reg = await run([
      "connect",
      server.addr,
      "--user",
      "bob",
      "--register",
      "--accept-new-key",
    ], {
      env,
      input: "/quit\n",
    });
    assert.equal(reg.code, 0, reg.stderr);
    const first = parley(["connect", server.addr, "--user", "bob"], { env, stdin: "piped" })
      .spawn();
    const out = new Output(first.stdout);
    const err = new Output(first.stderr);
    await out.waitFor(/Logged in as bob on /);
    const second = await run(["connect", server.addr, "--user", "bob"], { env, input: "/quit\n" });
    assert.equal(second.code, 0, second.stderr);
    await out.waitFor(/logged in from another place\. This session has ended\./);
    const status = await first.status;
    assert.equal(status.code, 1);
    await first.stdin.close().catch(() => {});
    await Promise.all([out.done, err.done]);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect refuses a server whose key changed", async () => {
  const dir = await tempDir();
  const config = await fastConfig(dir);
  const env = { PARLEY_CONFIG_DIR: join(dir, "client"), PARLEY_PASSWORD: "s3cret-pass" };
  let server = await ServerProcess.start(join(dir, "data"), config);
  try {
    const port = server.port;
    const ok = await run([
      "connect",
      server.addr,
      "--user",
      "carol",
      "--register",
      "--accept-new-key",
    ], {
      env,
      input: "/quit\n",
    });
    assert.equal(ok.code, 0, ok.stderr);
    await server.stop();
    // Same address, new data dir: a different identity key.
    server = await ServerProcess.start(join(dir, "other-data"), config, port);
    // The flag trusts new servers only: a changed key stays refused.
    const refused = await run(["connect", server.addr, "--user", "carol", "--accept-new-key"], {
      env,
      input: "/quit\n",
    });
    assert.equal(refused.code, 1);
    // Whole: the warning ends with what to do, past the 200 characters kept of others' text.
    assert.match(
      refused.stderr,
      /presented identity key .* but the key pinned on first contact is SHA256:\S+\. Someone may be intercepting the connection, or the server's operator replaced its key\. If you trust the change, remove the line for 127\.0\.0\.1:\d+ from \S+known_hosts\.\n/,
    );
    assert.doesNotMatch(refused.stderr, /…/);
    assert.doesNotMatch(refused.stdout, /Logged in/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect to a closed port says no server is listening", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const r = await run(["connect", `127.0.0.1:${port}`, "--user", "x1"], {
    env: { PARLEY_PASSWORD: "whatever" },
  });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), `parley: No Parley server is listening at 127.0.0.1:${port}`);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

Deno.test("--log-json writes JSON lines with level and event, and never passwords or message text", async () => {
  const dir = await tempDir();
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir), 0, [
    "--log-json",
  ]);
  const env = { PARLEY_CONFIG_DIR: join(dir, "client"), PARLEY_PASSWORD: "hunter2-secret" };
  try {
    for (const user of ["dana", "erik"]) {
      const r = await run([
        "connect",
        server.addr,
        "--user",
        user,
        "--register",
        "--accept-new-key",
      ], {
        env,
        input: "/quit\n",
      });
      assert.equal(r.code, 0, r.stderr);
    }
    const sent = await run(["send", "--to", "erik", "--user", "dana", "the launch code is 0000"], {
      env,
    });
    assert.equal(sent.code, 0, sent.stderr);
    const wrong = await run(["connect", server.addr, "--user", "dana"], {
      env: { ...env, PARLEY_PASSWORD: "not-hunter2" },
      input: "/quit\n",
    });
    assert.equal(wrong.code, 1);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
  const lines = server.out.text.trim().split("\n");
  const events = lines.map((line) =>
    JSON.parse(line) as { level: string; event: string; time: string }
  );
  for (const e of events) {
    assert.ok(["debug", "info", "warn", "error"].includes(e.level));
    assert.equal(typeof e.event, "string");
    assert.ok(!Number.isNaN(Date.parse(e.time)));
  }
  const names = events.map((e) => e.event);
  for (
    const want of [
      "server.listening",
      "user.registered",
      "session.login",
      "login.failed",
      "server.stopped",
    ]
  ) {
    assert.ok(names.includes(want), `no ${want} event in ${names.join(", ")}`);
  }
  for (const secret of ["hunter2", "launch code"]) {
    assert.ok(!server.out.text.includes(secret), `the log contains "${secret}"`);
  }
});

Deno.test("a SIGTERM the moment the server says it listens still ends in a clean stop", async () => {
  const dir = await tempDir();
  try {
    const config = await fastConfig(dir);
    for (let i = 0; i < 3; i++) {
      const server = await ServerProcess.start(join(dir, `data${i}`), config);
      const status = await server.stop("SIGTERM");
      assert.equal(status.code, 0, `run ${i}: ${server.out.text}`);
      assert.match(server.out.text, /server\.stopped/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
