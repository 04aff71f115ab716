/** Trust on first use: the client pins the server key and refuses a changed one. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ParleyClient } from "../../src/client/client.ts";
import { HostKeyChangedError } from "../../src/client/known_hosts.ts";
import { IDENTITY_FILE } from "../../src/store/identity.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("the client pins the key on first contact and accepts it afterwards", () =>
  withServer(async (t) => {
    const first = await t.connect();
    assert.equal(first.firstContact, true);
    assert.equal(first.fingerprint, t.server.fingerprint);
    const again = await t.connect();
    assert.equal(again.firstContact, false);
    await t.restart(); // same data dir, same key
    assert.equal((await t.connect()).firstContact, false);
  }));

Deno.test("a changed server key is refused with an explanation", () =>
  withServer(async (t) => {
    await t.connect();
    await t.closeClients();
    await Deno.remove(join(t.config.dataDir, IDENTITY_FILE));
    await t.restart(); // a new identity key on the same address
    await assert.rejects(
      ParleyClient.connect({ host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts }),
      (e) =>
        e instanceof HostKeyChangedError && /intercepting/.test(e.message) &&
        e.message.includes(t.server.fingerprint) && e.message.includes(t.knownHosts.path),
    );
  }));

Deno.test("a client that declines the first-contact key does not pin it", () =>
  withServer(async (t) => {
    const opts = { host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts };
    await assert.rejects(
      ParleyClient.connect({ ...opts, onFirstContact: () => false }),
      HostKeyChangedError,
    );
    const c = await t.connect();
    assert.equal(c.firstContact, true);
  }));
