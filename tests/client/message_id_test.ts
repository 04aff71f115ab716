/** Message ids: unique, and each keeps its bytes while later ids are drawn. */

import assert from "node:assert/strict";
import { newMessageId } from "../../src/client/client.ts";

Deno.test("newMessageId() gives distinct 16-byte ids that stay intact past several pools", () => {
  // 256 ids come from one pool: 1,000 use up several, and the first ids must not change.
  const ids = Array.from({ length: 1000 }, () => newMessageId());
  const hexAtBirth = ids.map((id) => id.toHex());
  for (let i = 0; i < 1000; i++) newMessageId();
  assert.deepEqual(ids.map((id) => id.toHex()), hexAtBirth);
  assert.ok(ids.every((id) => id.length === 16));
  assert.equal(new Set(hexAtBirth).size, ids.length);
});
