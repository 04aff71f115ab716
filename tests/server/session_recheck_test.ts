/**
 * recheckSessions (handlers/session_recheck.ts) over a store whose reads wait: a pass whose
 * signal aborts (a newer pass superseded it) takes no further session.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import type { PasswordHash } from "../../src/crypto/password.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { holdCredentials, recheckSessions } from "../../src/server/handlers/session_recheck.ts";
import { silentLogger } from "../../src/server/log.ts";
import type { Session } from "../../src/server/session.ts";
import type { UserRecord } from "../../src/store/types.ts";

const PASSWORD: PasswordHash = {
  alg: "scrypt",
  N: 1024,
  r: 8,
  p: 1,
  salt: new Uint8Array(16),
  hash: new Uint8Array(32).fill(1),
};

Deno.test("recheckSessions() stops taking sessions once its signal aborts", async () => {
  const record: UserRecord = {
    name: "vic",
    password: PASSWORD,
    created: new Date(0),
    passwordStamp: "s",
  };
  let reads = 0;
  let gate: Promise<void> | null = null;
  const ctx = {
    log: silentLogger,
    store: {
      users: {
        get: async () => {
          reads++;
          await gate;
          return record;
        },
      },
      tokens: { familyOf: () => Promise.resolve({}) },
    },
  } as unknown as ServerContext;
  const clock = new ManualClock(0);
  const sessions = Array.from({ length: 100 }, (_, id) => {
    const s = { id, clock, login: { user: "vic", name: "vic" } } as unknown as Session;
    holdCredentials(ctx, s, { password: "s" });
    return s;
  });
  await new Promise((r) => setTimeout(r, 0));
  reads = 0; // the logins' own confirmations
  let open = () => {};
  gate = new Promise((r) => open = r);
  const superseded = new AbortController();
  const pass = recheckSessions(ctx, sessions, false, superseded.signal);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(reads, 16, "16 reads at once");
  superseded.abort();
  open();
  const done = await pass;
  assert.equal(reads, 16, "no read after the abort");
  assert.deepEqual(done, { checked: 16, ended: 0, stopped: true });
  // Not aborted: the whole walk.
  reads = 0;
  assert.deepEqual(await recheckSessions(ctx, sessions, false), {
    checked: 100,
    ended: 0,
    stopped: false,
  });
  assert.equal(reads, 100);
});
