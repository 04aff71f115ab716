/**
 * `parley admin` and `parley serve --check-config` as an operator runs them: the real CLI as
 * child processes on real data dirs, beside real servers and clients.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ParleyClient } from "../../src/client/client.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { loadOrCreateIdentity } from "../../src/store/identity.ts";
import { lockDataDir } from "../../src/store/data_lock.ts";
import { openKvStore } from "../../src/store/kv_store.ts";
import { rejects } from "../helpers/assert.ts";
import { passes, pattern, sha } from "../helpers/content.ts";
import { fastConfig, run, ServerProcess } from "../helpers/cli.ts";
import { befriend } from "../helpers/friends.ts";

const COMMANDS = ["users", "groups", "stats", "reset-password", "delete-user", "backup", "restore"];

function admin(args: string[], input?: string) {
  return run(["admin", ...args], { input });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function names(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** A temp dir with a fast-scrypt config file, removed afterwards with whatever is left. */
async function withDir(fn: (dir: string, config: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-admin-" });
  try {
    await fn(dir, await fastConfig(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Clients of servers on loopback that pin keys in one known_hosts file, closed at the end. */
class Clients {
  readonly all: ParleyClient[] = [];
  readonly knownHosts: KnownHosts;

  constructor(dir: string) {
    this.knownHosts = new KnownHosts(join(dir, "known_hosts"));
  }

  async connect(port: number): Promise<ParleyClient> {
    const c = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: this.knownHosts });
    this.all.push(c);
    return c;
  }

  async user(port: number, name: string): Promise<ParleyClient> {
    const c = await this.connect(port);
    await c.register(name, `password-${name}`);
    await c.login(name, `password-${name}`);
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.all) c.close();
    await Promise.all(this.all.map((c) => c.closed));
    this.all.length = 0;
  }
}

function oneLine(r: { stderr: string }): void {
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

Deno.test("parley admin --help lists every command, each has its own help, mistakes exit 2", async () => {
  const top = await admin(["--help"]);
  assert.equal(top.code, 0);
  for (const name of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${name}\\b`, "m"));
  assert.match((await run(["--help"])).stdout, /parley admin COMMAND/);
  assert.match((await run(["help", "admin"])).stdout, /Usage: parley admin COMMAND/);
  for (const name of COMMANDS) {
    const r = await admin([name, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: parley admin ${name}`));
    assert.match(r.stdout, /--data DIR/);
  }
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /Unknown admin command "frobnicate"/],
    [["reset-password"], /needs NAME/],
    [["users", "extra"], /takes no argument "extra"/],
    [["users", "--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, pattern] of cases) {
    const r = await admin(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    oneLine(r);
  }
});

Deno.test("admin commands on a dir without a store say so and create nothing", () =>
  withDir(async (dir) => {
    const missing = join(dir, "typo");
    for (const args of [["users"], ["stats"], ["backup", join(dir, "b.jsonl")]]) {
      const r = await admin([...args, "--data", missing]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /There is no Parley store in ".*typo" \(no parley\.kv\); check --data/,
      );
      oneLine(r);
    }
    const r = await admin(["delete-user", "bob", "--yes", "--data", missing]);
    assert.equal(r.code, 1);
    assert.equal(await exists(missing), false);
  }));

Deno.test("beside a running server: listings and backup work, changes are refused; the backup restores into a server clients accept, with queued messages", () =>
  withDir(async (dir, config) => {
    const data = join(dir, "data");
    const clients = new Clients(dir);
    let server = await ServerProcess.start(data, config);
    try {
      const alice = await clients.user(server.port, "alice");
      const bob = await clients.user(server.port, "Bob");
      const carol = await clients.user(server.port, "carol");
      await befriend(alice, "alice", bob, "bob");
      // carol is no friend of alice's: invited, she joins by accepting.
      const trip = await alice.createGroup("trip", ["bob", "carol"]);
      await carol.joinGroup(trip.group_id);
      const bobToken = bob.token!;
      bob.close();
      await carol.logout();
      const image = pattern(300 * 1024, 5);
      await alice.sendText({ user: "bob" }, "see you at 8");
      await alice.sendImage({ group: trip.group_id }, image, "map.png");

      const users = await admin(["users", "--json", "--data", data]);
      assert.equal(users.code, 0, users.stderr);
      const rows = JSON.parse(users.stdout).users as Record<string, number | string>[];
      const row = (name: string) => rows.find((u) => u.name === name)!;
      assert.deepEqual(rows.map((u) => u.name).sort(), ["Bob", "alice", "carol"]);
      assert.equal(row("alice").friends, 1);
      assert.equal(row("alice").groups, 1);
      assert.equal(row("Bob").queued, 2);
      assert.equal(row("carol").queued, 1);
      assert.equal(row("carol").tokens, 0, "logout revoked carol's token");
      assert.match(
        (await admin(["users", "--data", data])).stdout,
        /^Bob\s+\S+ \S+\s+1\s+1\s+2 \(/m,
      );
      const groups = await admin(["groups", "--data", data]);
      assert.match(groups.stdout, /^1\s+trip\s+alice\s+.*3: alice, Bob, carol$/m);
      const stats = await admin(["stats", "--data", data]);
      assert.match(stats.stdout, /^users\s+3$/m);
      assert.match(stats.stdout, /^queued messages\s+3 \(/m);
      assert.match(stats.stdout, new RegExp(`^identity\\s+${escape(server.fingerprint)}$`, "m"));

      const file = join(dir, "parley.backup");
      const backup = await admin(["backup", file, "--data", data]);
      assert.equal(backup.code, 0, backup.stderr);
      assert.match(backup.stdout, /Backed up \d+ entries \(3 users, 1 group, 3 queued messages\)/);
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      assert.deepEqual(await names(dir), ["config.json", "data", "known_hosts", "parley.backup"]);

      const refusals = [
        ["reset-password", "alice", "--password-stdin"],
        ["delete-user", "bob", "--yes"],
        ["restore", file],
      ];
      for (const args of refusals) {
        const r = await admin([...args, "--data", data], "another-password\n");
        assert.equal(r.code, 1, `${args[0]}: ${r.stdout}`);
        assert.match(
          r.stderr,
          new RegExp(
            `The server is running on the data dir ".*" \\(pid ${server.child.pid}\\); stop it first`,
          ),
        );
        oneLine(r);
      }

      const port = server.port;
      await clients.close();
      assert.equal((await server.stop()).code, 0);
      const restored = join(dir, "restored");
      const restore = await admin(["restore", file, "--data", restored]);
      assert.equal(restore.code, 0, restore.stderr);
      assert.match(restore.stdout, /Restored \d+ entries \(3 users, 1 group, 3 queued messages\)/);
      assert.ok(restore.stdout.includes(server.fingerprint), restore.stdout);

      // Same port, same pinned key: a client that knew the old server accepts this one.
      server = await ServerProcess.start(restored, config, port);
      const back = await clients.connect(port);
      await back.resume(bobToken);
      const got = await passes(back, 2);
      assert.equal(got[0].data, "see you at 8");
      assert.equal(got[1].name, "map.png");
      assert.equal(sha(got[1].data as Uint8Array), sha(image));
      const carolBack = await clients.connect(port);
      await carolBack.login("carol", "password-carol");
      const [carolGot] = await passes(carolBack, 1);
      assert.equal(sha(carolGot.data as Uint8Array), sha(image));
      assert.deepEqual((await carolBack.members(trip.group_id)).map((m) => m.username).sort(), [
        "Bob",
        "alice",
        "carol",
      ]);
    } finally {
      await clients.close();
      await server.stop();
    }
  }));

Deno.test("a backup taken while images pour in holds every queued message whole", () =>
  withDir(async (dir, config) => {
    const data = join(dir, "data");
    const clients = new Clients(dir);
    let server = await ServerProcess.start(data, config);
    try {
      const alice = await clients.user(server.port, "alice");
      const bob = await clients.user(server.port, "bob");
      await bob.logout();
      // Images over 48 KiB are stored as chunks apart from the inbox entry that names them, so a
      // backup that is not one instant's view could hold an entry without its chunks.
      const image = (i: number) => pattern(60 * 1024, i);
      let sent = 0;
      let sending = true;
      const traffic = (async () => {
        while (sending) await alice.sendImage({ user: "bob" }, image(++sent));
      })();
      while (sent < 5) await alice.ping();
      const file = join(dir, "busy.backup");
      const backup = await admin(["backup", file, "--data", data]);
      sending = false;
      await traffic;
      assert.equal(backup.code, 0, backup.stderr);
      const queued = Number(/(\d+) queued messages/.exec(backup.stdout)![1]);
      assert.ok(queued >= 4 && queued <= sent, `${queued} of ${sent}`);

      await clients.close();
      await server.stop();
      const restored = join(dir, "restored");
      assert.equal((await admin(["restore", file, "--data", restored])).code, 0);
      server = await ServerProcess.start(restored, config);
      const back = await clients.connect(server.port);
      await back.login("bob", "password-bob");
      const init = (await back.nextEvent(MsgType.INITIALIZE)).body as { pending: number };
      assert.equal(init.pending, queued);
      const got = await passes(back, queued);
      got.forEach((p, i) =>
        assert.equal(sha(p.data as Uint8Array), sha(image(i + 1)), `image ${i + 1}`)
      );
    } finally {
      await clients.close();
      await server.stop();
    }
  }));

Deno.test("reset-password and delete-user on a stopped server's data dir", () =>
  withDir(async (dir, config) => {
    const data = join(dir, "data");
    const clients = new Clients(dir);
    let server = await ServerProcess.start(data, config);
    let port = server.port;
    let aliceToken: Uint8Array = new Uint8Array();
    let solo = 0;
    let trip = 0;
    const groupImage = pattern(200 * 1024, 9);
    try {
      const alice = await clients.user(port, "alice");
      const bob = await clients.user(port, "bob");
      const carol = await clients.user(port, "carol");
      await befriend(alice, "alice", bob, "bob");
      await befriend(carol, "carol", bob, "bob");
      await befriend(alice, "alice", carol, "carol");
      trip = (await alice.createGroup("trip", ["bob", "carol"])).group_id;
      solo = (await bob.createGroup("bob alone", [])).group_id;
      aliceToken = alice.token!;
      await bob.logout();
      await carol.logout();
      await alice.sendText({ user: "bob" }, "hi bob");
      await alice.sendImage({ user: "bob" }, pattern(150 * 1024, 3), "private.png");
      await alice.sendImage({ group: trip }, groupImage, "group.png");
      await clients.close();
    } finally {
      await server.stop();
    }

    const short = await admin([
      "reset-password",
      "alice",
      "--password-stdin",
      "--data",
      data,
      "--config",
      config,
    ], "short\n");
    assert.equal(short.code, 1);
    assert.match(short.stderr, /Passwords need at least 8 characters; nothing changed/);
    const noTty = await admin(["reset-password", "alice", "--data", data]);
    assert.equal(noTty.code, 2);
    assert.match(noTty.stderr, /pass --password-stdin/);
    const reset = await admin(
      ["reset-password", "ALICE", "--password-stdin", "--data", data, "--config", config],
      "a-brand-new-password\n",
    );
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /New password set for alice/);

    const unconfirmed = await admin(["delete-user", "bob", "--data", data]);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /pass --yes/);
    const del = await admin(["delete-user", "bob", "--yes", "--data", data]);
    assert.equal(del.code, 0, del.stderr);
    assert.match(
      del.stdout,
      /^Deleted bob with 2 friends, 2 groups, 3 queued messages \(.*\); 1 group left empty and deleted: #\d+ bob alone\.$/m,
    );
    const again = await admin(["delete-user", "bob", "--yes", "--data", data]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /There is no user named "bob"/);

    // Nothing of bob's is left in the store; the group image stays for carol.
    const kv = await Deno.openKv(join(data, "parley.kv"));
    try {
      const blobs = new Set<string>();
      for await (const e of kv.list({ prefix: [] })) {
        assert.ok(!e.key.includes("bob"), `left behind: ${Deno.inspect(e.key)}`);
        if (e.key[0] === "token") assert.notEqual((e.value as { user: string }).user, "bob");
        if (e.key[0] === "blob") blobs.add(e.key[1] as string);
      }
      assert.equal(blobs.size, 1, "only the group image's chunks remain");
    } finally {
      kv.close();
    }
    const groups = await admin(["groups", "--json", "--data", data]);
    assert.deepEqual(
      JSON.parse(groups.stdout).groups.map((
        g: { id: number; members: string[] },
      ) => [g.id, g.members]),
      [[
        trip,
        ["alice", "carol"],
      ]],
    );
    assert.notEqual(trip, solo);

    server = await ServerProcess.start(data, config, port);
    port = server.port;
    try {
      const c = await clients.connect(port);
      await rejects(c.login("alice", "password-alice"), ErrorCode.WRONG_PASSWORD);
      await rejects(c.resume(aliceToken), ErrorCode.BAD_TOKEN);
      await c.login("alice", "a-brand-new-password");
      assert.deepEqual((await c.friends()).map((f) => f.username), ["carol"]);
      assert.deepEqual((await c.members(trip)).map((m) => m.username).sort(), ["alice", "carol"]);
      const carol = await clients.connect(port);
      await carol.login("carol", "password-carol");
      assert.deepEqual((await carol.friends()).map((f) => f.username), ["alice"]);
      const [image] = await passes(carol, 1);
      assert.equal(sha(image.data as Uint8Array), sha(groupImage));
      const b = await clients.connect(port);
      await rejects(b.login("bob", "password-bob"), ErrorCode.NO_SUCH_USER);
      await b.register("bob", "a-new-bob-password");
    } finally {
      await clients.close();
      await server.stop();
    }
  }));

/** A small store (users, a friendship, a group) and an identity key, made in this process. */
async function smallStore(data: string): Promise<void> {
  await loadOrCreateIdentity(data);
  const store = await openKvStore(data);
  const password = {
    alg: "scrypt" as const,
    N: 1024,
    r: 8,
    p: 1,
    salt: new Uint8Array(16),
    hash: new Uint8Array(32),
  };
  const people = ["zoe", "yan"].map((name) => ({ user: name, name }));
  for (const p of people) await store.users.create({ name: p.name, password, created: new Date() });
  await store.friends.add(people[0], people[1]);
  await store.groups.create("pair", "zoe", people);
  await store.close();
}

Deno.test("restore refuses a dir that holds anything and a damaged backup, and leaves nothing behind", () =>
  withDir(async (dir) => {
    const data = join(dir, "data");
    await smallStore(data);
    const file = join(dir, "good.backup");
    assert.equal((await admin(["backup", file, "--data", data])).code, 0);
    const lines = (await Deno.readTextFile(file)).trimEnd().split("\n");
    assert.ok(lines.length >= 5, lines.join("\n"));

    const occupied = join(dir, "occupied");
    await Deno.mkdir(occupied);
    await Deno.writeTextFile(join(occupied, "notes.txt"), "mine");
    const keyOnly = join(dir, "key-only");
    await loadOrCreateIdentity(keyOnly);
    const dirs: [string, RegExp][] = [
      [data, /already holds a Parley store/],
      [occupied, /is not empty \(it holds "notes\.txt"\)/],
      [keyOnly, /already holds a Parley identity key/],
    ];
    for (const [target, pattern] of dirs) {
      const before = await names(target);
      const r = await admin(["restore", file, "--data", target]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, pattern);
      assert.match(r.stderr, /restore only into an empty or new directory/);
      oneLine(r);
      assert.deepEqual(await names(target), before, "the dir is as it was");
    }

    const write = async (name: string, text: string) => {
      await Deno.writeTextFile(join(dir, name), text);
      return join(dir, name);
    };
    const replaced = (at: number, line: string) =>
      lines.map((l, i) => i + 1 === at ? line : l).join("\n") + "\n";
    const newer = JSON.stringify({ ...JSON.parse(lines[0]), version: 2 });
    const broken: [string, RegExp][] = [
      [
        await write("tag.backup", replaced(4, '{"k":["user","x"],"v":{"$t":"bogus"}}')),
        /line 4: Unknown tag "bogus"/,
      ],
      [
        await write("json.backup", replaced(3, lines[2].slice(0, 20))),
        /line 3: it is not valid JSON/,
      ],
      [
        await write("key.backup", replaced(3, '{"k":[null],"v":1}')),
        /line 3: A key part cannot be null/,
      ],
      [await write("cut.backup", lines.slice(0, -1).join("\n") + "\n"), /without its end line/],
      [
        await write("count.backup", replaced(lines.length, '{"end":{"entries":1}}')),
        /end line counts 1 entries/,
      ],
      [await write("text.backup", "hello\n"), /line 1: it is not a Parley backup header/],
      [await write("empty.backup", ""), /line 1: the file is empty/],
      [
        await write("newer.backup", replaced(1, newer)),
        /line 1: the backup is format version 2, newer/,
      ],
      [join(dir, "missing.backup"), /There is no backup file/],
    ];
    const empty = join(dir, "empty");
    await Deno.mkdir(empty);
    for (const [bad, pattern] of broken) {
      for (const target of [join(dir, "new"), empty]) {
        const r = await admin(["restore", bad, "--data", target]);
        assert.equal(r.code, 1, `${bad}: ${r.stdout}`);
        assert.match(r.stderr, pattern);
        oneLine(r);
      }
      assert.equal(await exists(join(dir, "new")), false, `${bad} left the new dir behind`);
      assert.deepEqual(await names(empty), [], `${bad} left something in the empty dir`);
    }

    // And the good file restores into the same empty dir afterwards.
    const ok = await admin(["restore", file, "--data", empty]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await names(empty), ["identity.key", "parley.kv", "parley.lock"]);
    assert.match((await admin(["users", "--data", empty])).stdout, /^zoe\s/m);
  }));

Deno.test("a server does not start while an admin command holds the data dir, and names it", () =>
  withDir(async (dir, config) => {
    const data = join(dir, "data");
    await smallStore(data);
    const lock = await lockDataDir(data, "admin restore");
    try {
      const r = await run([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data",
        data,
        "--config",
        config,
      ]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        new RegExp(
          `"parley admin restore" is working on the data dir ".*" \\(pid ${Deno.pid}\\); wait for it to finish`,
        ),
      );
    } finally {
      lock.release();
    }
    // Once it is released, the server starts.
    const server = await ServerProcess.start(data, config);
    await server.stop();
  }));

Deno.test("serve --check-config prints the effective settings; bad ones exit 2, an unusable data dir 1", () =>
  withDir(async (dir, config) => {
    const fresh = join(dir, "fresh", "data");
    const good = await run([
      "serve",
      "--check-config",
      "--data",
      fresh,
      "--config",
      config,
      "--host",
      "127.0.0.1",
      "--port",
      "7999",
      "--log-json",
    ]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /configuration is valid/);
    assert.match(good.stdout, /listen\s+127\.0\.0\.1:7999/);
    assert.match(good.stdout, /data dir\s+.*fresh\/data \(does not exist yet/);
    assert.match(good.stdout, /scrypt N=1024 r=8 p=1/);
    assert.match(good.stdout, /log\s+JSON lines/);
    assert.equal(await exists(join(dir, "fresh")), false, "nothing is created");

    // Beside a running server on the same port: it checks without listening.
    const data = join(dir, "data");
    const server = await ServerProcess.start(data, config);
    try {
      const r = await run([
        "serve",
        "--check-config",
        "--data",
        data,
        "--port",
        String(server.port),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(server.fingerprint), r.stdout);
    } finally {
      await server.stop();
    }

    await Deno.writeTextFile(join(dir, "bad.json"), '{"limits": {"maxFriends": 0}}');
    await Deno.writeTextFile(join(dir, "a-file"), "");
    const damaged = join(dir, "damaged");
    await Deno.mkdir(damaged);
    await Deno.writeTextFile(join(damaged, "identity.key"), "not a key\n");
    const cases: [string[], number, RegExp][] = [
      [["--port", "70000"], 2, /"port" must be a whole number/],
      [["--config", join(dir, "bad.json")], 2, /"limits.maxFriends" must be a whole number/],
      [["--log-level", "loud"], 2, /--log-level must be one of/],
      [["--data", join(dir, "a-file")], 1, /is a file, not a directory/],
      [["--data", join(dir, "a-file", "data")], 1, /cannot be made: ".*a-file" is not a directory/],
      [["--data", damaged], 1, /identity key ".*" is damaged/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = await run(["serve", "--check-config", ...args]);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      oneLine(r);
    }
  }));

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

Deno.test("admin groups and users show names chosen by clients inert, in tables and in JSON", () =>
  withDir(async (dir) => {
    const data = join(dir, "data");
    await loadOrCreateIdentity(data);
    const store = await openKvStore(data);
    const password = {
      alg: "scrypt" as const,
      N: 1024,
      r: 8,
      p: 1,
      salt: new Uint8Array(16),
      hash: new Uint8Array(32),
    };
    const zoe = { user: "zoe", name: "zoe" };
    await store.users.create({ name: "zoe", password, created: new Date() });
    // A C1 CSI, an OSC title, a bidi override and a zero-width space in a group name.
    const hostile = "\u009b2J\x1b]0;x\x07\u202epuorg\u200b";
    await store.groups.create(hostile, "zoe", [zoe]);
    await store.close();
    // deno-lint-ignore no-control-regex
    const active = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u200b-\u200f\u2066-\u2069]/u;

    const table = await admin(["groups", "--data", data]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /\\u\{9b\}2J\\u\{1b\}\]0;x\\u\{7\}\\u\{202e\}puorg\\u\{200b\}/);
    assert.doesNotMatch(table.stdout, active);
    const json = await admin(["groups", "--json", "--data", data]);
    assert.equal(json.code, 0, json.stderr);
    assert.doesNotMatch(json.stdout, active);
    assert.equal(JSON.parse(json.stdout).groups[0].name, hostile, "the JSON means the same");
  }));
