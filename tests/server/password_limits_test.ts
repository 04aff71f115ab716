/**
 * Password checks under attack, over real TCP: attempts counted when they start, an owner who
 * cannot be locked out from elsewhere, no timing difference between unknown names and wrong
 * passwords, CHANGE_PASSWORD guesses throttled, the registration budget, and the login log line.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { join } from "node:path";
import { ParleyClient } from "../../src/client/client.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { createLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { rejects } from "../helpers/assert.ts";
import { testConfig, type TestServer, withServer } from "../helpers/server.ts";

/** A client from ::1; the server listens on "::", so t.connect() comes from ::ffff:127.0.0.1. */
async function fromIpv6(t: TestServer): Promise<ParleyClient> {
  const c = await ParleyClient.connect({ host: "::1", port: t.port, knownHosts: null });
  t.clients.push(c);
  return c;
}

function codeOf(body: unknown): number {
  return (body as { code: number }).code;
}

Deno.test("concurrent wrong guesses from one address: only the free ones and one more are checked", () =>
  withServer(async (t) => {
    await (await t.connect()).register("alice", "right password");
    const guessers = await Promise.all(Array.from({ length: 20 }, () => t.connect()));
    const replies = await Promise.all(
      guessers.map((c, i) => c.request(MsgType.LOGIN, ["alice", `wrong guess ${i}`])),
    );
    const codes = replies.map((r) => codeOf(r.body));
    const wrong = codes.filter((c) => c === ErrorCode.WRONG_PASSWORD).length;
    const throttled = codes.filter((c) => c === ErrorCode.THROTTLED).length;
    // Five free failures, then the sixth starts the first delay; everything after it waits.
    assert.equal(wrong, 6, `checked ${wrong} of 20 guesses: ${codes}`);
    assert.equal(throttled, 14);
  }));

Deno.test("an attacker at another address cannot lock the owner out", () =>
  withServer(async (t) => {
    await (await t.connect()).register("alice", "right password");
    const attacker = await fromIpv6(t);
    for (let i = 0; i < 17; i++) {
      const reply = await attacker.request(MsgType.LOGIN, ["alice", `guess ${i}`]);
      assert.ok(
        [ErrorCode.WRONG_PASSWORD, ErrorCode.THROTTLED].includes(codeOf(reply.body) as 1 | 26),
      );
    }
    await rejects(attacker.login("alice", "another guess"), ErrorCode.THROTTLED);
    // The owner, at another address, logs in at once.
    const owner = await t.connect();
    assert.equal((await owner.login("alice", "right password")).username, "alice");
  }, { host: "::" }));

Deno.test("the per-name cap for all addresses spares the addresses the account logged in from", () =>
  withServer(async (t) => {
    await (await t.connect()).register("alice", "right password");
    await (await t.connect()).register("bob", "right password");
    // Bob has logged in from 127.0.0.1 before; alice has not.
    await (await t.connect()).login("bob", "right password");
    const attacker = await fromIpv6(t);
    for (const name of ["alice", "bob"]) {
      for (let i = 0; i < 3; i++) {
        await rejects(attacker.login(name, `guess ${i}`), ErrorCode.WRONG_PASSWORD);
      }
    }
    const e = await rejects(
      (await t.connect()).login("alice", "right password"),
      ErrorCode.THROTTLED,
    );
    assert.match(e.message, /Too many failed logins; try again in 1 s/);
    assert.equal((await (await t.connect()).login("bob", "right password")).username, "bob");
  }, {
    host: "::",
    accounts: { loginFreeFailures: 10, loginNameFailures: 2, loginDelayMs: 1000 },
  }));

/** Median time of each request in `bodies`, measured in turns so that load drifts alike. */
async function medianMs(c: ParleyClient, bodies: unknown[], rounds: number): Promise<number[]> {
  const times: number[][] = bodies.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, body] of bodies.entries()) {
      const start = performance.now();
      await c.request(MsgType.LOGIN, body as never);
      times[i].push(performance.now() - start);
    }
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(rounds / 2)]);
}

Deno.test("LOGIN of an unknown name takes as long as a wrong password", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("alice", "right password");
    const [wrong, unknown, invalid] = await medianMs(c, [
      ["alice", "wrong password"],
      ["nobody", "any password"],
      ["-bad name", "any password"],
    ], 9);
    // A cost where a hash (~20-60 ms) dwarfs a round trip (~0.2 ms).
    assert.ok(wrong > 5, `a wrong password took ${wrong} ms; the hash is too cheap to compare`);
    for (
      const [what, ms] of [["an unknown name", unknown], ["an invalid name", invalid]] as const
    ) {
      assert.ok(
        ms > wrong * 0.5,
        `${what} took ${ms.toFixed(1)} ms, a wrong password ${wrong.toFixed(1)} ms`,
      );
    }
  }, { accounts: { scrypt: { N: 16384, r: 8, p: 1 }, loginFreeFailures: 1000 } }));

Deno.test("CHANGE_PASSWORD guesses of the current password are throttled like logins", () =>
  withServer(async (t) => {
    const c = await t.user("alice", "right password");
    for (let i = 0; i < 6; i++) {
      await rejects(c.changePassword(`guess ${i}`, "a new password"), ErrorCode.WRONG_PASSWORD);
    }
    const e = await rejects(
      c.changePassword("right password", "a new password"),
      ErrorCode.THROTTLED,
    );
    assert.match(e.message, /Too many wrong passwords; try again in 1 s/);
    // The count is the name's from this address: a LOGIN from here waits too.
    await rejects((await t.connect()).login("alice", "right password"), ErrorCode.THROTTLED);
  }));

Deno.test("REGISTER has an allowance per address and one for the server, refilled on the server's clock", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const local = await t.connect();
      await local.register("user1", "a password");
      await rejects(local.register("user1", "a password"), ErrorCode.USERNAME_TAKEN);
      const e = await rejects(local.register("user2", "a password"), ErrorCode.THROTTLED);
      assert.match(e.message, /Too many new accounts from this address; try again in \d+ s/);
      const remote = await fromIpv6(t);
      await remote.register("user3", "a password");
      const full = await rejects(remote.register("user4", "a password"), ErrorCode.THROTTLED);
      assert.match(full.message, /Too many new accounts on this server just now/);
      // Refused registrations made nothing; existing users log in as ever.
      await rejects(remote.login("user4", "a password"), ErrorCode.NO_SUCH_USER);
      assert.equal((await remote.login("user3", "a password")).username, "user3");
      // An hour later on the server's clock, both allowances are full again (on new connections:
      // the keepalive closed these meanwhile).
      clock.advance(60 * 60 * 1000);
      await (await fromIpv6(t)).register("user4", "a password");
      await (await t.connect()).register("user2", "a password");
    },
    { host: "::", accounts: { registerPerIp: 2, registerPerHour: 3 } },
    { clock },
  );
});

Deno.test("with registration closed REGISTER is refused and existing users log in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-test-" });
  try {
    const data = join(dir, "data");
    let server = await startServer(testConfig(data), createLogger({ level: "error" }));
    const port = server.addr.port;
    let c = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null });
    await c.register("alice", "right password");
    c.close();
    await server.close();
    server = await startServer(
      testConfig(data, { port, accounts: { registration: "closed" } }),
      createLogger({ level: "error" }),
    );
    c = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null });
    const reply = await c.request(MsgType.REGISTER, ["bob", "a password"]);
    assert.equal(reply.type, MsgType.REG_FAIL);
    assert.deepEqual(reply.body, {
      code: ErrorCode.REGISTER_CLOSED,
      message: "This server does not take new accounts; ask its operator",
    });
    assert.equal((await c.login("alice", "right password")).username, "alice");
    c.close();
    await c.closed;
    await server.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the session.login log line says whether it was by password or by resume token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-test-" });
  const lines: string[] = [];
  const server = await startServer(
    testConfig(join(dir, "data")),
    createLogger({ level: "info", write: (l) => lines.push(l) }),
  );
  try {
    const port = server.addr.port;
    const a = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null });
    await a.register("alice", "right password");
    const { token } = await a.login("alice", "right password");
    const b = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null });
    await b.resume(token!);
    const logins = lines.filter((l) => l.includes("session.login"));
    assert.equal(logins.length, 2, lines.join("\n"));
    assert.match(logins[0], /\bby=password\b/);
    assert.match(logins[1], /\bby=resume\b/);
    for (const c of [a, b]) c.close();
    await Promise.all([a.closed, b.closed]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
