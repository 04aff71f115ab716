/**
 * The handshake as pure functions: matching keys, signature checks, version and magic checks,
 * refusals, and low-order X25519 keys.
 */

import assert from "node:assert/strict";
import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import {
  CLIENT_HELLO_BYTES,
  encodeClientHello,
  encodeRefusal,
  finishClient,
  isServerHello,
  MAGIC,
  parseClientHello,
  PROTOCOL_VERSION,
  respondToClient,
  SERVER_HELLO_BYTES,
  SERVER_PREFIX_BYTES,
} from "../../src/crypto/handshake.ts";
import { ed25519KeyPair, KEY_BYTES, type KeyPair, x25519KeyPair } from "../../src/crypto/keys.ts";
import { HandshakeError } from "../../src/protocol/errors.ts";

const seed = (n: number) => new Uint8Array(32).fill(n);

/** Fixed keys so every run exercises the same bytes. */
const identity = ed25519KeyPair(seed(1));
const otherIdentity = ed25519KeyPair(seed(2));

interface Run {
  clientEphemeral: KeyPair;
  clientHello: Uint8Array;
  serverHello: Uint8Array;
  serverKeys: { send: Uint8Array; receive: Uint8Array };
}

function serverSide(n = 3, server: KeyPair = identity): Run {
  const clientEphemeral = x25519KeyPair(seed(n));
  const clientHello = encodeClientHello(clientEphemeral.publicKey);
  const { serverHello, keys } = respondToClient(clientHello, server, x25519KeyPair(seed(n + 100)));
  return { clientEphemeral, clientHello, serverHello, serverKeys: keys };
}

function assertHandshakeError(fn: () => unknown, pattern?: RegExp, message?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HandshakeError, `expected HandshakeError, got ${e}. ${message ?? ""}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("finishClient() derives the keys the server derived, crosswise", () => {
  const run = serverSide();
  const { keys, serverIdentity } = finishClient(
    run.clientHello,
    run.clientEphemeral,
    run.serverHello,
  );
  assert.deepEqual(keys.send, run.serverKeys.receive);
  assert.deepEqual(keys.receive, run.serverKeys.send);
  assert.notDeepEqual(keys.send, keys.receive);
  assert.equal(keys.send.length, 32);
  assert.equal(keys.receive.length, 32);
  assert.deepEqual(serverIdentity, identity.publicKey);
});

Deno.test("finishClient() keys carry frames both ways", () => {
  const run = serverSide();
  const { keys } = finishClient(run.clientHello, run.clientEphemeral, run.serverHello);
  const up = new FrameSealer(keys.send).seal(new Uint8Array([1, 2, 3]));
  const frameUp = { header: up.subarray(0, 4), body: up.subarray(4) };
  assert.deepEqual(
    new FrameOpener(run.serverKeys.receive).open(frameUp),
    new Uint8Array([1, 2, 3]),
  );
  const down = new FrameSealer(run.serverKeys.send).seal(new Uint8Array([9]));
  const frameDown = { header: down.subarray(0, 4), body: down.subarray(4) };
  assert.deepEqual(new FrameOpener(keys.receive).open(frameDown), new Uint8Array([9]));
});

Deno.test("respondToClient() gives different keys to different connections", () => {
  const a = serverSide(3);
  const b = serverSide(4);
  assert.notDeepEqual(a.serverKeys.send, b.serverKeys.send);
  assert.notDeepEqual(a.serverKeys.receive, b.serverKeys.receive);
});

Deno.test("respondToClient() writes a ServerHello of the documented layout", () => {
  const run = serverSide();
  const hello = run.serverHello;
  assert.equal(hello.length, SERVER_HELLO_BYTES);
  assert.equal(SERVER_HELLO_BYTES, 133);
  assert.deepEqual(hello.subarray(0, 4), MAGIC);
  assert.equal(hello[4], PROTOCOL_VERSION);
  assert.deepEqual(hello.subarray(5, 37), x25519KeyPair(seed(103)).publicKey);
  assert.deepEqual(hello.subarray(37, 69), identity.publicKey);
});

Deno.test("encodeClientHello() writes magic, version and key", () => {
  const pub = new Uint8Array(KEY_BYTES).fill(0xab);
  const hello = encodeClientHello(pub);
  assert.equal(hello.length, CLIENT_HELLO_BYTES);
  assert.equal(hello.toHex(), "50524c59" + "01" + "ab".repeat(32));
  assert.deepEqual(parseClientHello(hello), { version: 1, ephemeralPublic: pub });
  assert.equal(encodeClientHello(pub, 7)[4], 7);
});

Deno.test("finishClient() throws HandshakeError for a tampered signature", () => {
  const run = serverSide();
  for (const at of [69, 100, SERVER_HELLO_BYTES - 1]) {
    const bad = run.serverHello.slice();
    bad[at] ^= 0x01;
    assertHandshakeError(
      () => finishClient(run.clientHello, run.clientEphemeral, bad),
      /signature is invalid/,
      `byte ${at}`,
    );
  }
});

Deno.test("finishClient() throws HandshakeError for a tampered server ephemeral key", () => {
  const run = serverSide();
  for (const at of [5, 20, 36]) {
    const bad = run.serverHello.slice();
    bad[at] ^= 0x40;
    assertHandshakeError(
      () => finishClient(run.clientHello, run.clientEphemeral, bad),
      /signature is invalid/,
      `byte ${at}`,
    );
  }
});

Deno.test("finishClient() throws HandshakeError for a swapped identity key", () => {
  const run = serverSide();
  const bad = run.serverHello.slice();
  bad.set(otherIdentity.publicKey, 37);
  assertHandshakeError(
    () => finishClient(run.clientHello, run.clientEphemeral, bad),
    /signature is invalid/,
  );
});

Deno.test("finishClient() throws HandshakeError for every single-bit flip of the identity key", () => {
  // Some flips give bytes that are not an Ed25519 point at all; those must be a HandshakeError
  // too, not the key parser's TypeError.
  const run = serverSide();
  let notAPoint = 0;
  for (let bit = 0; bit < KEY_BYTES * 8; bit++) {
    const bad = run.serverHello.slice();
    bad[37 + (bit >> 3)] ^= 1 << (bit & 7);
    assertHandshakeError(
      () => finishClient(run.clientHello, run.clientEphemeral, bad),
      /signature is invalid|not a valid Ed25519 key/,
      `bit ${bit}`,
    );
    try {
      finishClient(run.clientHello, run.clientEphemeral, bad);
    } catch (e) {
      if (e instanceof HandshakeError && /not a valid Ed25519 key/.test(e.message)) notAPoint++;
    }
  }
  assert.ok(notAPoint > 0, "some flips must hit the not-a-point path this test guards");
});

Deno.test("finishClient() throws HandshakeError when the hello was signed by someone else", () => {
  const run = serverSide(3, otherIdentity);
  const bad = run.serverHello.slice();
  bad.set(identity.publicKey, 37); // claims the pinned identity, signed by another key
  assertHandshakeError(() => finishClient(run.clientHello, run.clientEphemeral, bad));
});

Deno.test("finishClient() throws HandshakeError when the client hello differs", () => {
  // the transcript binds the client's hello: a MITM-altered ClientHello breaks the signature
  const run = serverSide();
  const otherHello = encodeClientHello(x25519KeyPair(seed(9)).publicKey);
  assertHandshakeError(
    () => finishClient(otherHello, run.clientEphemeral, run.serverHello),
    /signature/,
  );
});

Deno.test("finishClient() throws HandshakeError for a wrong length, magic or version", () => {
  const run = serverSide();
  const finish = (hello: Uint8Array) => () =>
    finishClient(run.clientHello, run.clientEphemeral, hello);
  assertHandshakeError(finish(run.serverHello.subarray(0, SERVER_HELLO_BYTES - 1)));
  const longer = new Uint8Array(SERVER_HELLO_BYTES + 1);
  longer.set(run.serverHello);
  assertHandshakeError(finish(longer));
  const magic = run.serverHello.slice();
  magic[0] = 0x51;
  assertHandshakeError(finish(magic));
  const version = run.serverHello.slice();
  version[4] = 2;
  assertHandshakeError(finish(version), /unsupported protocol version 2/);
  const refusal = run.serverHello.slice();
  refusal[4] = 0;
  assertHandshakeError(finish(refusal), /Malformed/);
});

Deno.test("finishClient() throws HandshakeError for a signed all-zero server ephemeral key", () => {
  // A hostile server can sign a low-order key; the shared secret would be all zeros.
  const clientEphemeral = x25519KeyPair(seed(3));
  const clientHello = encodeClientHello(clientEphemeral.publicKey);
  const real = x25519KeyPair(seed(50));
  const lowOrder = { secret: real.secret, publicKey: new Uint8Array(KEY_BYTES) };
  const { serverHello } = respondToClient(clientHello, identity, lowOrder);
  assertHandshakeError(
    () => finishClient(clientHello, clientEphemeral, serverHello),
    /not a usable X25519 key/,
  );
});

Deno.test("respondToClient() throws HandshakeError for a wrong magic", () => {
  const hello = encodeClientHello(x25519KeyPair(seed(3)).publicKey);
  for (let i = 0; i < MAGIC.length; i++) {
    const bad = hello.slice();
    bad[i] ^= 0x20;
    assertHandshakeError(
      () => respondToClient(bad, identity, x25519KeyPair(seed(4))),
      /Not a Parley client hello/,
    );
    assertHandshakeError(() => parseClientHello(bad), /Not a Parley client hello/);
  }
  assertHandshakeError(() => parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n")));
});

Deno.test("respondToClient() throws HandshakeError for a wrong length", () => {
  const hello = encodeClientHello(x25519KeyPair(seed(3)).publicKey);
  assertHandshakeError(() => parseClientHello(hello.subarray(0, CLIENT_HELLO_BYTES - 1)));
  assertHandshakeError(() => parseClientHello(new Uint8Array(CLIENT_HELLO_BYTES + 1)));
  assertHandshakeError(() => parseClientHello(new Uint8Array(0)));
});

Deno.test("respondToClient() throws HandshakeError for a wrong version", () => {
  const pub = x25519KeyPair(seed(3)).publicKey;
  for (const version of [0, 2, 255]) {
    assertHandshakeError(
      () => respondToClient(encodeClientHello(pub, version), identity, x25519KeyPair(seed(4))),
      new RegExp(`Unsupported protocol version ${version}`),
    );
  }
});

Deno.test("respondToClient() throws HandshakeError for an all-zero client key", () => {
  const hello = encodeClientHello(new Uint8Array(KEY_BYTES));
  assertHandshakeError(
    () => respondToClient(hello, identity, x25519KeyPair(seed(4))),
    /not a usable X25519 key/,
  );
});

Deno.test("respondToClient() throws HandshakeError for other low-order client keys", () => {
  // u = 1 and u = p - 1 (little-endian) are small-order points on Curve25519.
  const one = new Uint8Array(KEY_BYTES);
  one[0] = 1;
  const pMinus1 = Uint8Array.fromHex(
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  );
  for (const key of [one, pMinus1]) {
    assertHandshakeError(
      () => respondToClient(encodeClientHello(key), identity, x25519KeyPair(seed(4))),
      /X25519/,
      key.toHex(),
    );
  }
});

Deno.test("encodeRefusal() writes magic, 0, the supported version and the reason", () => {
  const refusal = encodeRefusal("nope");
  assert.equal(refusal.toHex(), "50524c59" + "00" + "01" + "0004" + "6e6f7065");
  assert.equal(encodeRefusal("").toHex(), "50524c59" + "00" + "01" + "0000");
  const long = encodeRefusal("é".repeat(40_000)); // 80,000 bytes, cut to 65,535
  assert.equal(new DataView(long.buffer).getUint16(6), 0xffff);
  assert.equal(long.length, 8 + 0xffff);
});

Deno.test("isServerHello() tells a hello from a refusal", () => {
  const run = serverSide();
  assert.equal(isServerHello(run.serverHello.subarray(0, SERVER_PREFIX_BYTES)), true);
  assert.equal(isServerHello(encodeRefusal("old client").subarray(0, SERVER_PREFIX_BYTES)), false);
});

Deno.test("isServerHello() throws HandshakeError for a wrong magic, version or length", () => {
  assertHandshakeError(() => isServerHello(new TextEncoder().encode("HTTP/")), /did not answer/);
  assertHandshakeError(
    () => isServerHello(new Uint8Array([0x50, 0x52, 0x4c, 0x59, 2])),
    /version 2/,
  );
  assertHandshakeError(() => isServerHello(new Uint8Array([0x50, 0x52, 0x4c, 0x59])));
  assertHandshakeError(() => isServerHello(new Uint8Array([0x50, 0x52, 0x4c, 0x59, 1, 0])));
});
