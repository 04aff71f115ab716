/**
 * A broken invariant in a running server: logged as invariant.broken and counted in /metrics,
 * and the server goes on; unless it was started with strictInvariants (as tests start it).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { invariant, InvariantError } from "../../src/invariant/invariant.ts";
import { createLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { testConfig } from "../helpers/server.ts";

Deno.test("a server logs and counts a broken invariant and goes on; a strict one throws", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-test-" });
  const lines: string[] = [];
  const config = testConfig(join(dir, "data"), { http: { enabled: true, port: 0 } });
  const server = await startServer(config, createLogger({ write: (l) => lines.push(l) }));
  try {
    invariant(false, "a test breaks this on purpose");
    const logged = lines.filter((l) => l.includes("invariant.broken"));
    assert.equal(logged.length, 1);
    assert.match(logged[0], /a test breaks this on purpose/);
    const res = await fetch(`http://127.0.0.1:${server.http!.port}/metrics`);
    assert.match(await res.text(), /^parley_invariant_violations_total 1$/m);
  } finally {
    await server.close();
  }
  assert.throws(() => invariant(false, "after the stop"), InvariantError, "stopped: throws again");

  const strict = await startServer(
    testConfig(join(dir, "strict")),
    createLogger({ write: (l) => lines.push(l) }),
    { strictInvariants: true },
  );
  try {
    assert.throws(() => invariant(false, "in a strict server"), InvariantError);
  } finally {
    await strict.close();
    await Deno.remove(dir, { recursive: true });
  }
});
