/** The streaming SHA-256 the browser hashes files with: FIPS vectors, node:crypto, any split. */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Sha256Stream } from "../../src/crypto/sha256_stream.ts";
import { Prng } from "../protocol/prng.ts";

function hex(parts: Uint8Array[]): string {
  const h = new Sha256Stream();
  for (const p of parts) h.update(p);
  return h.digest().toHex();
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("SHA-256 stream: the published vectors", () => {
  assert.equal(hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(
    hex([text("abc")]),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    hex([text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")]),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  // One million "a", in pieces of 1,000.
  const thousand = text("a".repeat(1000));
  assert.equal(
    hex(Array.from({ length: 1000 }, () => thousand)),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
});

Deno.test("SHA-256 stream: node:crypto's digest for every length around a block and any split", () => {
  const prng = new Prng(21);
  for (let n = 0; n < 300; n++) {
    const data = prng.bytes(n);
    const want = createHash("sha256").update(data).digest("hex");
    const parts = prng.chunks(data, 1 + prng.int(0, 150));
    assert.equal(hex(parts), want, `${n} bytes in ${parts.length} pieces`);
  }
});

Deno.test("SHA-256 stream: a digest is given once", () => {
  const h = new Sha256Stream();
  h.digest();
  assert.throws(() => h.update(text("x")), /already/);
  assert.throws(() => h.digest(), /already/);
});
