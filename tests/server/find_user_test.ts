/** FIND_USER: whether a user exists, with no other effect. */

import assert from "node:assert/strict";
import { ErrorCode, ParleyError } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("FIND_USER answers the registered spelling, NO_SUCH_USER otherwise, and tells nobody", () =>
  withServer(async (t) => {
    const bob = await t.user("Bob");
    const alice = await t.user("alice");
    assert.equal(await alice.findUser("bob"), "Bob");
    assert.equal(await alice.findUser("alice"), "alice");
    for (const name of ["bobb", "no such name!"]) {
      await assert.rejects(
        alice.findUser(name),
        (e) =>
          e instanceof ParleyError && e.code === ErrorCode.NO_SUCH_USER &&
          e.message === `There is no user named "${name}"`,
      );
    }
    // Bob hears nothing of it: the next push he gets is the ping's answer, not a notice.
    await bob.ping();
    await assert.rejects(bob.nextEvent(MsgType.NEW_FRIEND, 200));
    // Before login it is refused like every request that needs a session.
    const anonymous = await t.connect();
    await assert.rejects(
      anonymous.findUser("Bob"),
      (e) => e instanceof ParleyError && e.code === ErrorCode.NOT_LOGGED_IN,
    );
  }));
