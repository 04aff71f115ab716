/** Message ids: unique, and each keeps its bytes while later ids are drawn. */

import assert from "node:assert/strict";
import { newMessageId } from "../../src/client/client.ts";
import { pooledMessageId } from "../../scripts/bench_client.ts";
import { isOwned } from "../../src/store/storable.ts";

Deno.test("newMessageId() gives distinct 16-byte ids, each in a buffer of its own", () => {
  const ids = Array.from({ length: 1000 }, () => newMessageId());
  assert.ok(ids.every((id) => id.length === 16 && isOwned(id)));
  assert.equal(new Set(ids.map((id) => id.toHex())).size, ids.length);
});

Deno.test("the bench's pooledMessageId() gives distinct ids that stay intact past several pools", () => {
  // 256 ids come from one pool: 1,000 use up several, and the first ids must not change.
  const ids = Array.from({ length: 1000 }, () => pooledMessageId());
  const hexAtBirth = ids.map((id) => id.toHex());
  for (let i = 0; i < 1000; i++) pooledMessageId();
  assert.deepEqual(ids.map((id) => id.toHex()), hexAtBirth);
  assert.ok(ids.every((id) => id.length === 16));
  assert.equal(new Set(hexAtBirth).size, ids.length);
});
