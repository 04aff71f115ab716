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
