/**
 * The browser's handshake (WebCrypto) against the Deno one: the same key bytes as finishClient
 * for the same inputs, and the same refusals of bad signatures, keys and hellos.
 */

import assert from "node:assert/strict";
import {
  encodeClientHello,
  finishClient,
  respondToClient,
  SERVER_HELLO_BYTES,
} from "../../src/crypto/handshake.ts";
import {
  encodeUnsignedServerHello,
  SERVER_SIGNED_BYTES,
  signedMessage,
  transcriptBytes,
} from "../../src/crypto/handshake_layout.ts";
import { ed25519KeyPair, ed25519Sign, sha256, x25519KeyPair } from "../../src/crypto/keys.ts";
import { finishClientWeb, webEphemeral } from "../../src/crypto/web/handshake.ts";
import { HandshakeError } from "../../src/protocol/errors.ts";

const seed = (n: number) => new Uint8Array(32).fill(n);
const identity = ed25519KeyPair(seed(1));
const otherIdentity = ed25519KeyPair(seed(2));

async function assertHandshakeError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HandshakeError, `expected a HandshakeError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** A client hello from the web ephemeral of `n`, and the server's answer with fixed keys. */
async function run(n: number, server = identity) {
  const ephemeral = await webEphemeral(seed(n));
  const clientHello = encodeClientHello(ephemeral.publicKey);
  const { serverHello, keys } = respondToClient(clientHello, server, x25519KeyPair(seed(n + 100)));
  return { ephemeral, clientHello, serverHello, serverKeys: keys };
}

Deno.test("webEphemeral(secret) has the public key keys.ts computes for that secret", async () => {
  for (const n of [3, 4, 200]) {
    assert.deepEqual((await webEphemeral(seed(n))).publicKey, x25519KeyPair(seed(n)).publicKey);
  }
});

Deno.test("webEphemeral() makes a fresh 32-byte key each time", async () => {
  const a = await webEphemeral();
  const b = await webEphemeral();
  assert.equal(a.publicKey.length, 32);
  assert.notDeepEqual(a.publicKey, b.publicKey);
});

Deno.test("finishClientWeb() derives finishClient's keys, byte for byte, for the same inputs", async () => {
  for (const n of [3, 7, 42, 99]) {
    const r = await run(n);
    const web = await finishClientWeb(r.clientHello, r.ephemeral, r.serverHello);
    const native = finishClient(r.clientHello, x25519KeyPair(seed(n)), r.serverHello);
    assert.deepEqual(web.keys.send, native.keys.send);
    assert.deepEqual(web.keys.receive, native.keys.receive);
    assert.deepEqual(web.serverIdentity, native.serverIdentity);
    assert.deepEqual(web.serverIdentity, identity.publicKey);
    // And crosswise with the server's.
    assert.deepEqual(web.keys.send, r.serverKeys.receive);
    assert.deepEqual(web.keys.receive, r.serverKeys.send);
    assert.notDeepEqual(web.keys.send, web.keys.receive);
  }
});

Deno.test("finishClientWeb() refuses a hello signed by another key than the one it names", async () => {
  const r = await run(3);
  const forged = r.serverHello.slice();
  forged.set(otherIdentity.publicKey, 5 + 32); // the signature is still identity's
  await assertHandshakeError(
    finishClientWeb(r.clientHello, r.ephemeral, forged),
    /signature is invalid/,
  );
});

Deno.test("finishClientWeb() refuses a flipped bit anywhere in the signed part or the signature", async () => {
  const r = await run(5);
  for (const at of [5, 20, 36, 37 + 31, SERVER_SIGNED_BYTES, SERVER_HELLO_BYTES - 1]) {
    const bad = r.serverHello.slice();
    bad[at] ^= 0x01;
    await assert.rejects(
      finishClientWeb(r.clientHello, r.ephemeral, bad),
      HandshakeError,
      `byte ${at}`,
    );
  }
  // The transcript covers the client's hello too: a changed ClientHello breaks the signature.
  const otherHello = r.clientHello.slice();
  otherHello[10] ^= 0x80;
  await assertHandshakeError(
    finishClientWeb(otherHello, r.ephemeral, r.serverHello),
    /signature is invalid/,
  );
});

Deno.test("finishClientWeb() refuses a low-order server key even when it is properly signed", async () => {
  const ephemeral = await webEphemeral(seed(9));
  const clientHello = encodeClientHello(ephemeral.publicKey);
  // Points of small order on Curve25519 (RFC 7748 section 6.1; the libsodium blocklist).
  const lowOrder = [
    new Uint8Array(32),
    new Uint8Array(32).fill(0).map((_, i) => i === 0 ? 1 : 0),
    Uint8Array.fromHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    Uint8Array.fromHex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
  ];
  for (const key of lowOrder) {
    const hello = encodeUnsignedServerHello(key, identity.publicKey);
    const th = sha256(transcriptBytes(clientHello, hello));
    hello.set(ed25519Sign(identity, signedMessage(th)), SERVER_SIGNED_BYTES);
    // The Deno side refuses it too: both say the same.
    assert.throws(
      () => finishClient(clientHello, x25519KeyPair(seed(9)), hello),
      /not a usable X25519 key/,
    );
    await assertHandshakeError(
      finishClientWeb(clientHello, ephemeral, hello),
      /not a usable X25519 key/,
    );
  }
});

Deno.test("finishClientWeb() refuses a hello of the wrong size, magic or version", async () => {
  const r = await run(11);
  await assertHandshakeError(
    finishClientWeb(r.clientHello, r.ephemeral, r.serverHello.subarray(0, 132)),
    /Malformed/,
  );
  const magic = r.serverHello.slice();
  magic[0] = 0x51;
  await assertHandshakeError(finishClientWeb(r.clientHello, r.ephemeral, magic), /Parley/);
  const version = r.serverHello.slice();
  version[4] = 2;
  await assertHandshakeError(
    finishClientWeb(r.clientHello, r.ephemeral, version),
    /unsupported protocol version 2/,
  );
});
