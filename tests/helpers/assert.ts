/** Assertions shared by the integration tests. */

import assert from "node:assert/strict";
import { ParleyError } from "../../src/protocol/errors.ts";

/** Awaits `p` and checks that it failed with a ParleyError of wire code `code`. */
export async function rejects(p: Promise<unknown>, code: number): Promise<ParleyError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ParleyError, `expected a ParleyError, got ${e}`);
    assert.equal(e.code, code, `expected code ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected a failure with code ${code}`);
}

/** Waits until `done()` holds, checking every few ms; fails after `ms` instead of hanging. */
export async function until(done: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`still waiting after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
