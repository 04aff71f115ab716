/** Registration by invitation: codes made with `parley admin invite` beside a running server. */

import assert from "node:assert/strict";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { rejects } from "../helpers/assert.ts";
import { run } from "../helpers/cli.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("with registration by invitation each code from `parley admin invite` makes one account", () =>
  withServer(async (t) => {
    const c = await t.connect();
    const none = await rejects(c.register("alice", "a password"), ErrorCode.BAD_INVITE);
    assert.equal(
      none.message,
      "This server takes new accounts by invitation only; give an invite code",
    );
    const bogus = await rejects(
      c.register("alice", "a password", "00000-00000"),
      ErrorCode.BAD_INVITE,
    );
    assert.equal(bogus.message, "The invite code is unknown, used or expired");

    // Made while the server runs, by the real CLI.
    const made = await run([
      "admin",
      "invite",
      "--data",
      t.config.dataDir,
      "-n",
      "2",
      "--days",
      "3",
    ]);
    assert.equal(made.code, 0, made.stderr);
    const codes = made.stdout.trim().split("\n");
    assert.equal(codes.length, 2);
    for (const code of codes) assert.match(code, /^[0-9a-f]{5}(-[0-9a-f]{5}){3}$/);
    assert.match(
      made.stderr,
      /2 codes, valid until .* UTC\. Note: accounts\.registration is "open"/,
    );

    // Typed loosely: case, spaces and dashes do not matter.
    const typed = ` ${codes[0].toUpperCase().replaceAll("-", " ")} `;
    assert.equal(await c.register("alice", "a password", typed), "alice");
    await rejects(c.register("bob", "a password", codes[0]), ErrorCode.BAD_INVITE);
    // A refused registration leaves the code usable.
    await rejects(c.register("aIice", "a password", codes[1]), ErrorCode.USERNAME_TAKEN);
    assert.equal(await c.register("bob", "a password", codes[1]), "bob");
    assert.equal((await c.login("alice", "a password")).username, "alice");
  }, { accounts: { registration: "invite" } }));

Deno.test("an open server ignores an invite code sent along, as an older one would", () =>
  withServer(async (t) => {
    const c = await t.connect();
    const reply = await c.request(MsgType.REGISTER, ["alice", "a password", "whatever"]);
    assert.deepEqual(reply.body, { username: "alice" });
  }));
