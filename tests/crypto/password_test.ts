/**
 * scrypt password hashing: verify, stored parameters, upgrades, salts, and the concurrency cap.
 */

import assert from "node:assert/strict";
import {
  type PasswordHash,
  PasswordHasher,
  REGISTER_QUEUE,
  type ScryptParams,
} from "../../src/crypto/password.ts";
import { ErrorCode, ParleyError } from "../../src/protocol/errors.ts";

const SMALL: ScryptParams = { N: 1024, r: 8, p: 1 };

function hasher(params: ScryptParams = SMALL, concurrency = 4, queue = 16): PasswordHasher {
  return new PasswordHasher({ params, concurrency, queue });
}

Deno.test("PasswordHasher.verify() accepts the right password and refuses a wrong one", async () => {
  const h = hasher();
  const stored = await h.hash("correct horse battery staple");
  assert.equal(await h.verify("correct horse battery staple", stored), true);
  assert.equal(await h.verify("correct horse battery stapler", stored), false);
  assert.equal(await h.verify("", stored), false);
});

Deno.test("PasswordHasher.hash() stores the algorithm, parameters, salt and hash", async () => {
  const stored = await hasher().hash("pw");
  assert.equal(stored.alg, "scrypt");
  assert.deepEqual([stored.N, stored.r, stored.p], [1024, 8, 1]);
  assert.equal(stored.salt.length, 16);
  assert.equal(stored.hash.length, 32);
  assert.ok(!stored.hash.every((b) => b === 0));
});

Deno.test("PasswordHasher.hash() uses a fresh salt, so equal passwords hash differently", async () => {
  const h = hasher();
  const a = await h.hash("same");
  const b = await h.hash("same");
  assert.notDeepEqual(a.salt, b.salt);
  assert.notDeepEqual(a.hash, b.hash);
  assert.equal(await h.verify("same", a), true);
  assert.equal(await h.verify("same", b), true);
});

Deno.test("PasswordHasher.verify() uses the stored parameters, not the configured ones", async () => {
  const old = await hasher({ N: 1024, r: 8, p: 1 }).hash("pw");
  const newer = hasher({ N: 2048, r: 8, p: 1 });
  assert.equal(await newer.verify("pw", old), true);
  assert.equal(await newer.verify("other", old), false);
});

Deno.test("PasswordHasher.verify() depends on the salt and the stored parameters", async () => {
  const h = hasher();
  const stored = await h.hash("pw");
  const otherSalt: PasswordHash = { ...stored, salt: stored.salt.map((b) => b ^ 1) };
  assert.equal(await h.verify("pw", otherSalt), false);
  const otherN: PasswordHash = { ...stored, N: 2048 };
  assert.equal(await h.verify("pw", otherN), false);
});

Deno.test("PasswordHasher.verify() refuses a stored hash of the wrong length", async () => {
  const h = hasher();
  const stored = await h.hash("pw");
  assert.equal(await h.verify("pw", { ...stored, hash: stored.hash.subarray(0, 16) }), false);
});

Deno.test("PasswordHasher.verify() matches composed and decomposed Unicode (NFC)", async () => {
  const h = hasher();
  const stored = await h.hash("caf\u00e9");
  assert.equal(await h.verify("cafe\u0301", stored), true);
});

Deno.test("PasswordHasher.isOutdated() is true only when a stored parameter is weaker", async () => {
  const h = hasher({ N: 2048, r: 8, p: 2 });
  const base = await hasher({ N: 2048, r: 8, p: 2 }).hash("pw");
  assert.equal(h.isOutdated(base), false);
  assert.equal(h.isOutdated({ ...base, N: 1024 }), true);
  assert.equal(h.isOutdated({ ...base, r: 4 }), true);
  assert.equal(h.isOutdated({ ...base, p: 1 }), true);
  assert.equal(h.isOutdated({ ...base, N: 4096 }), false);
  assert.equal(h.isOutdated({ ...base, N: 4096, r: 16, p: 4 }), false);
});

Deno.test("PasswordHasher refuses a call past the queue with SERVER_BUSY", async () => {
  const h = hasher(SMALL, 1, 1);
  const calls = [h.hash("one"), h.hash("two"), h.hash("three")];
  const [first, second, third] = await Promise.allSettled(calls);
  assert.equal(first.status, "fulfilled");
  assert.equal(second.status, "fulfilled");
  assert.equal(third.status, "rejected");
  const reason = (third as PromiseRejectedResult).reason;
  assert.ok(reason instanceof ParleyError, `expected ParleyError, got ${reason}`);
  assert.equal(reason.code, ErrorCode.SERVER_BUSY);
  assert.equal(reason.code, 10);
  // the queued hash really completed and is usable
  const stored = (second as PromiseFulfilledResult<PasswordHash>).value;
  assert.equal(await h.verify("two", stored), true);
});

Deno.test("PasswordHasher counts verify() calls against the same cap", async () => {
  const h = hasher(SMALL, 1, 1);
  const stored = await h.hash("pw");
  const results = await Promise.allSettled([
    h.verify("pw", stored),
    h.hash("x"),
    h.verify("pw", stored),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "rejected"]);
  assert.equal((results[0] as PromiseFulfilledResult<boolean>).value, true);
  const reason = (results[2] as PromiseRejectedResult).reason;
  assert.ok(reason instanceof ParleyError && reason.code === ErrorCode.SERVER_BUSY);
});

Deno.test("PasswordHasher accepts new work once the busy burst has drained", async () => {
  const h = hasher(SMALL, 1, 1);
  await Promise.allSettled([h.hash("a"), h.hash("b"), h.hash("c")]);
  const results = await Promise.allSettled([h.hash("d"), h.hash("e")]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
});

Deno.test("PasswordHasher with queue 0 refuses a second call while one runs", async () => {
  const h = hasher(SMALL, 1, 0);
  const [a, b] = await Promise.allSettled([h.hash("a"), h.hash("b")]);
  assert.equal(a.status, "fulfilled");
  assert.equal(b.status, "rejected");
  assert.equal(((b as PromiseRejectedResult).reason as ParleyError).code, ErrorCode.SERVER_BUSY);
});

Deno.test("PasswordHasher runs up to its concurrency without queueing", async () => {
  const h = hasher(SMALL, 3, 0);
  const results = await Promise.allSettled([h.hash("a"), h.hash("b"), h.hash("c"), h.hash("d")]);
  assert.deepEqual(results.map((r) => r.status), [
    "fulfilled",
    "fulfilled",
    "fulfilled",
    "rejected",
  ]);
});

Deno.test("PasswordHasher frees its slot when scrypt fails", async () => {
  const h = hasher(SMALL, 1, 0);
  const stored = await h.hash("pw");
  // N must be a power of two: scrypt rejects, and the slot must be released
  await assert.rejects(h.verify("pw", { ...stored, N: 1000 }));
  assert.equal(await h.verify("pw", stored), true);
});

Deno.test("PasswordHasher: a login waits for no registration, however many are queued", async () => {
  const h = hasher(SMALL, 2, 16);
  const stored = await h.hash("pw");
  let registered = 0;
  const registrations = Array.from(
    { length: 8 },
    (_, i) => h.hash(`new account ${i}`, "register").then(() => registered++),
  );
  const right = await h.verify("pw", stored);
  assert.equal(right, true);
  // Registration fills one of the two slots, one hash after another; the login took the other at
  // once, so only the few that fit in one hash's time (not all eight) were done before it.
  assert.ok(registered <= 4, `${registered} registrations were hashed before the login`);
  await Promise.all(registrations);
  assert.equal(registered, 8);
});

Deno.test("PasswordHasher: registrations wait in a small queue of their own", async () => {
  const h = hasher(SMALL, 2, 16);
  const results = await Promise.allSettled(
    Array.from({ length: 1 + REGISTER_QUEUE + 1 }, (_, i) => h.hash(`n${i}`, "register")),
  );
  const refused = results.filter((r) => r.status === "rejected");
  assert.equal(refused.length, 1);
  const reason = (refused[0] as PromiseRejectedResult).reason as ParleyError;
  assert.equal(reason.code, ErrorCode.SERVER_BUSY);
  assert.match(reason.message, /busy with new accounts/);
  // Logins still have their own queue.
  assert.equal(
    await h.verify("n0", (results[0] as PromiseFulfilledResult<PasswordHash>).value),
    true,
  );
});

Deno.test("PasswordHasher.verifyNobody() does a full hash and is always false", async () => {
  const slow = hasher({ N: 16384, r: 8, p: 1 });
  const stored = await slow.hash("pw");
  const t0 = performance.now();
  await slow.verify("other", stored);
  const real = performance.now() - t0;
  const t1 = performance.now();
  assert.equal(await slow.verifyNobody("other"), false);
  const dummy = performance.now() - t1;
  assert.ok(dummy > real * 0.5, `dummy check ${dummy.toFixed(1)} ms, real ${real.toFixed(1)} ms`);
});
