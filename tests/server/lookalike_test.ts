/** Look-alike usernames: refused at REGISTER, while accounts made before the rule keep working. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ParleyClient } from "../../src/client/client.ts";
import { PasswordHasher } from "../../src/crypto/password.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { usernameLookalikeKey } from "../../src/protocol/names.ts";
import { createLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import { rejects } from "../helpers/assert.ts";
import { testConfig, withServer } from "../helpers/server.ts";

Deno.test("usernameLookalikeKey() folds case, separators and confusable letters", () => {
  for (
    const name of ["alice", "ALICE", "aIice", "a1ice", "alice.", "al-ice", "a_l.i-c_e", "AL1CE"]
  ) {
    assert.equal(usernameLookalikeKey(name), "allce", name);
  }
  assert.equal(usernameLookalikeKey("b0b"), usernameLookalikeKey("bob"));
  assert.equal(usernameLookalikeKey("rnary"), usernameLookalikeKey("mary"));
  assert.equal(usernameLookalikeKey("vvendy"), usernameLookalikeKey("wendy"));
  assert.notEqual(usernameLookalikeKey("alicia"), usernameLookalikeKey("alice"));
  assert.notEqual(usernameLookalikeKey("bob2"), usernameLookalikeKey("bob"));
});

Deno.test("REGISTER refuses a name that looks like a taken one and names it", () =>
  withServer(async (t) => {
    const c = await t.connect();
    await c.register("Alice", "a password");
    for (const name of ["aIice", "a1ice", "alice.", "al-ice", "ALICE"]) {
      const e = await rejects(c.register(name, "a password"), ErrorCode.USERNAME_TAKEN);
      assert.match(
        e.message,
        name.toLowerCase() === "alice" ? /is taken/ : /looks too much like "Alice"/,
      );
    }
    assert.equal(await c.register("alicia", "a password"), "alicia");
    assert.equal((await c.login("ALICE", "a password")).username, "Alice");
  }));

Deno.test("accounts made before the look-alike rule keep working; the rule holds for new ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-test-" });
  try {
    const data = join(dir, "data");
    // A data dir of an older version: two look-alike accounts, no look-alike keys.
    await (await openKvStore(data)).close();
    const kv = await Deno.openKv(join(data, KV_FILE));
    for await (const e of kv.list({ prefix: [] })) await kv.delete(e.key);
    const hasher = new PasswordHasher({
      params: { N: 1024, r: 8, p: 1 },
      concurrency: 1,
      queue: 4,
    });
    for (const name of ["alice", "a1ice"]) {
      const record = {
        name,
        password: await hasher.hash(`password of ${name}`),
        created: new Date(),
      };
      await kv.set(["user", name], record);
    }
    kv.close();
    const server = await startServer(testConfig(data), createLogger({ level: "error" }));
    try {
      const port = server.addr.port;
      const c = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null });
      for (const name of ["alice", "a1ice"]) {
        assert.equal((await c.login(name, `password of ${name}`)).username, name);
        await c.logout();
      }
      const e = await rejects(c.register("al1ce", "a password"), ErrorCode.USERNAME_TAKEN);
      assert.match(e.message, /looks too much like "a(1|l)ice"/);
      c.close();
      await c.closed;
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
