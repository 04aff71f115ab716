/**
 * One server per data dir: a second server started on the same dir, even at the same moment on
 * an empty one, is refused because the dir is in use, and the first one's identity key stands.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { DataDirBusyError } from "../../src/store/data_lock.ts";
import { IDENTITY_FILE } from "../../src/store/identity.ts";
import { testConfig } from "../helpers/server.ts";

Deno.test("two servers started together on an empty data dir: one runs, the other is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-datadir-" });
  const data = join(dir, "data");
  try {
    const results = await Promise.allSettled(
      [0, 1].map(() => startServer(testConfig(data), silentLogger)),
    );
    const running = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) => r.status === "rejected");
    assert.equal(running.length, 1);
    assert.equal(refused.length, 1);
    const error = (refused[0] as PromiseRejectedResult).reason;
    assert.ok(error instanceof DataDirBusyError, String(error));
    const server = (running[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof startServer>>>)
      .value;
    const key = (await Deno.readTextFile(join(data, IDENTITY_FILE))).trim();
    assert.match(key, /^[0-9a-f]{64}$/);
    await server.close();
    // Once the first has stopped, the dir is free, and the same identity comes back.
    const again = await startServer(testConfig(data), silentLogger);
    assert.equal(again.fingerprint, server.fingerprint);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
