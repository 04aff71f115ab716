/**
 * `parley connect A,B` and `parley send --server A,B`: the real CLI against real server
 * processes. Node B starts on a copy of node A's data dir (its key and its store), as the nodes
 * of a cluster share one key and one store; node C has a key of its own.
 */

import { copyDir } from "../helpers/files.ts";
import { freePort } from "../../scripts/free_port.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatProcess, fastConfig, run, ServerProcess } from "../helpers/cli.ts";

Deno.test("parley with several addresses skips a dead one, moves to the next node, refuses another key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-failover-" });
  const config = await fastConfig(dir);
  const servers: ServerProcess[] = [];
  const chats: ChatProcess[] = [];
  const env = (user: string) => ({
    PARLEY_CONFIG_DIR: join(dir, user, "config"),
    PARLEY_ACCEPT_NEW_KEY: "1",
    PARLEY_DATA_DIR: join(dir, user, "data"),
    PARLEY_PASSWORD: `password-${user}`,
  });
  const chat = (user: string, server: string, ...flags: string[]) => {
    const c = ChatProcess.start(["connect", server, "--user", user, ...flags], env(user));
    chats.push(c);
    return c;
  };
  try {
    const a = await ServerProcess.start(join(dir, "a"), config);
    servers.push(a);
    const dead = `127.0.0.1:${freePort()}`;
    const bPort = freePort();
    const b = `127.0.0.1:${bPort}`;
    const registered = await run(["connect", a.addr, "--user", "bob", "--register"], {
      env: env("bob"),
      input: "",
    });
    assert.equal(registered.code, 0, registered.stderr);

    const alice = chat("alice", `${dead},${a.addr},${b}`, "--register");
    await alice.out.waitFor(new RegExp(`Logged in as alice on ${a.addr}\\.`));
    // One key pinned under every address of the list.
    const pins = (await Deno.readTextFile(join(dir, "alice", "config", "known_hosts")))
      .trim().split("\n").map((line) => line.split(" "));
    assert.deepEqual(pins.map(([addr]) => addr).sort(), [dead, a.addr, b].sort());
    assert.equal(new Set(pins.map(([, key]) => key)).size, 1);
    // The list is what the next plain `parley` uses.
    const saved = await Deno.readTextFile(join(dir, "alice", "config", "last_server"));
    assert.equal(saved.trim(), `${dead},${a.addr},${b}`);

    // Node A goes away; node B comes up with what A stored.
    await a.stop();
    await alice.out.waitFor(/Reconnecting in/);
    await copyDir(join(dir, "a"), join(dir, "b"));
    servers.push(await ServerProcess.start(join(dir, "b"), config, bPort));
    await alice.out.waitFor(new RegExp(`Reconnected to ${b}\\.`), 30_000);
    await alice.type("/to bob", "hello from node b");

    const bob = chat("bob", `${dead},${b}`);
    await bob.out.waitFor(new RegExp(`Logged in as bob on ${b}\\.`));
    await bob.out.waitFor(/message arrived while you were away: @alice/);
    await bob.type("/to alice");
    await bob.out.waitFor(/<alice> hello from node b/);

    const sent = await run(
      ["send", "--server", `${dead},${b}`, "--user", "alice", "--to", "bob", "by script"],
      { env: env("alice") },
    );
    assert.equal(sent.code, 0, sent.stderr);
    await bob.out.waitFor(/<alice> by script/);

    // C is not a node of this cluster: its key is refused, not passed over for B.
    const c = await ServerProcess.start(join(dir, "c"), config);
    servers.push(c);
    const refused = await run(
      ["send", "--server", `${c.addr},${b}`, "--user", "alice", "--to", "bob", "to c"],
      { env: env("alice") },
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`server at ${c.addr} presented identity key`));

    // Nothing answering: one sentence naming each address.
    const none = await run(
      ["send", "--server", `${dead},${a.addr}`, "--user", "alice", "--to", "bob", "lost"],
      { env: env("alice") },
    );
    assert.equal(none.code, 1);
    assert.match(none.stderr, /Cannot reach any address of the server/);
    assert.match(none.stderr, new RegExp(`No Parley server is listening at ${a.addr}`));

    // `parley A,B` alone is `parley connect A,B`.
    const plain = await run([`${dead},${a.addr}`, "--user", "alice"], {
      env: env("alice"),
      input: "",
    });
    assert.equal(plain.code, 1, plain.stderr);
    assert.match(plain.stderr, /Cannot reach any address of the server/);

    await alice.type("/quit");
    assert.equal((await alice.finish()).code, 0);
  } finally {
    for (const c of chats) await c.kill();
    for (const s of servers) await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
