/** `parley send` next to the same user's open chat: real processes against a real server. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatProcess, fastConfig, run, ServerProcess } from "../helpers/cli.ts";

Deno.test("parley send as the user of an open chat neither ends it nor flickers presence", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-oneshot-" });
  const server = await ServerProcess.start(join(dir, "data"), await fastConfig(dir));
  const env = (user: string) => ({
    PARLEY_CONFIG_DIR: join(dir, user, "config"),
    PARLEY_ACCEPT_NEW_KEY: "1", // pinning is tested in interaction_test.ts
    PARLEY_DATA_DIR: join(dir, user, "data"),
    PARLEY_PASSWORD: `password-${user}`,
  });
  const chats: ChatProcess[] = [];
  const chat = async (user: string) => {
    const c = ChatProcess.start(["connect", server.addr, "--user", user, "--register"], env(user));
    chats.push(c);
    await c.out.waitFor(new RegExp(`Logged in as ${user} `));
    return c;
  };
  try {
    const alice = await chat("alice");
    const bob = await chat("bob");
    await alice.type("/add bob");
    await bob.out.waitFor(/alice asks to be your friend/);
    await bob.type("/add alice");
    await bob.out.waitFor(/alice is now your friend \(online\)\./);
    await alice.out.waitFor(/bob accepted: you are friends now\./);

    const send = (to: string, text: string) =>
      run(["send", "--to", to, "--user", "alice", "--server", server.addr, text], {
        env: env("alice"),
      });
    const sent = await send("bob", "deploy done");
    assert.equal(sent.code, 0, sent.stderr);
    await bob.out.waitFor(/<alice> deploy done/);
    // A note to self from a script shows in the person's open chat.
    const note = await send("alice", "note to self");
    assert.equal(note.code, 0, note.stderr);
    await alice.out.waitFor(/<alice> note to self/);

    // Alice's chat is still the live session: what she types still reaches bob...
    await alice.type("/to bob", "still here");
    await bob.out.waitFor(/<alice> still here/);
    // ...and neither of them saw anything of the scripts' sessions.
    assert.doesNotMatch(alice.out.text, /another place|session has ended/);
    assert.doesNotMatch(bob.out.text, /alice went offline|alice is online/);
    await alice.type("/quit");
    assert.equal((await alice.finish()).code, 0);
    await bob.out.waitFor(/alice went offline\./);
  } finally {
    for (const c of chats) await c.kill();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("each device keeps one resume token across logins, parley send none; /logout all ends them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-devices-" });
  const data = join(dir, "data");
  const server = await ServerProcess.start(data, await fastConfig(dir));
  // Two devices: two client config dirs (each with its own device secret).
  const env = (device: string) => ({
    PARLEY_CONFIG_DIR: join(dir, device, "config"),
    PARLEY_ACCEPT_NEW_KEY: "1", // pinning is tested in interaction_test.ts
    PARLEY_DATA_DIR: join(dir, device, "data"),
    PARLEY_PASSWORD: "password-alice",
  });
  const chat = async (device: string, input: string, ...flags: string[]) => {
    const r = await run(["connect", server.addr, "--user", "alice", ...flags], {
      env: env(device),
      input,
    });
    assert.equal(r.code, 0, r.stderr);
    return r;
  };
  const tokens = async () => {
    const r = await run(["admin", "users", "--json", "--data", data]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout).users as { name: string; tokens: number }[])
      .find((u) => u.name === "alice")!.tokens;
  };
  try {
    await chat("laptop", "/quit\n", "--register");
    for (let i = 0; i < 3; i++) await chat("laptop", "/quit\n");
    assert.equal(await tokens(), 1, "four logins from one device");
    await chat("phone", "/quit\n");
    for (let i = 0; i < 3; i++) {
      const s = await run([
        "send",
        "--to",
        "alice",
        "--user",
        "alice",
        "--server",
        server.addr,
        "hi",
      ], {
        env: env("laptop"),
      });
      assert.equal(s.code, 0, s.stderr);
    }
    assert.equal(await tokens(), 2, "two devices, and scripts add none");
    const out = await chat("phone", "/logout all\n");
    assert.match(out.stdout, /Logged out alice on every device\./);
    assert.equal(await tokens(), 0);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
