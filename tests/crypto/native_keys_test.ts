/**
 * The handshake's primitives from OpenSSL: they must give node:crypto's bytes and the protocol's
 * vectors, refuse what node:crypto refuses, and be chosen with OpenSSL's AES-GCM, or not at all.
 */

import assert from "node:assert/strict";
import { chooseAesGcm } from "../../src/crypto/aes_gcm.ts";
import { encodeClientHello, finishClient, respondToClient } from "../../src/crypto/handshake.ts";
import {
  ed25519KeyPair,
  KEY_BYTES,
  type KeyPrimitives,
  keyPrimitives,
  nodeKeys,
  useKeyPrimitives,
  x25519KeyPair,
} from "../../src/crypto/keys.ts";
import { agreesWithNodeKeys, loadNativeKeys } from "../../src/crypto/native_keys.ts";
import { HandshakeError } from "../../src/protocol/errors.ts";

const native = Deno.build.os === "linux" ? loadNativeKeys("libcrypto.so.3") : null;
const ignore = native === null;
if (ignore) console.warn("native_keys_test: libcrypto.so.3 did not load here; tests skipped");

/** Runs `fn` with the OpenSSL primitives in use, then puts node:crypto's back. */
function withNative(fn: () => void): void {
  useKeyPrimitives(native!);
  try {
    fn();
  } finally {
    useKeyPrimitives(nodeKeys);
  }
}

Deno.test({
  name: "loadNativeKeys() binds OpenSSL's primitives, which pass the known-answer check",
  ignore,
  fn() {
    assert.equal(native!.name, "openssl");
    assert.ok(agreesWithNodeKeys(native!));
    assert.ok(agreesWithNodeKeys(nodeKeys), "the check itself accepts node:crypto");
    assert.equal(loadNativeKeys("libparley-no-such-library.so"), null);
  },
});

Deno.test({
  name: "the known-answer check turns down primitives that are subtly wrong",
  ignore,
  fn() {
    const flip = (b: Uint8Array) => {
      const out = b.slice();
      out[out.length - 1] ^= 1;
      return out;
    };
    const broken: Partial<KeyPrimitives>[] = [
      { x25519Public: (s) => flip(native!.x25519Public(s)) },
      { x25519Shared: (s, p) => flip(native!.x25519Shared(s, p)) },
      // Accepts a low-order peer key.
      {
        x25519Shared: (s, p) =>
          p.every((b) => b === 0) ? new Uint8Array(KEY_BYTES) : native!.x25519Shared(s, p),
      },
      // The same "fresh" key every time.
      {
        x25519Ephemeral: (p) => {
          const secret = new Uint8Array(KEY_BYTES).fill(7);
          return {
            publicKey: native!.x25519Public(secret),
            shared: native!.x25519Shared(secret, p),
          };
        },
      },
      { ed25519Sign: (seed, m) => flip(native!.ed25519Sign(seed, m)) },
      // Signs with the first key it was given.
      {
        ed25519Sign: (() => {
          let first: Uint8Array | undefined;
          return (seed: Uint8Array, m: Uint8Array) => native!.ed25519Sign(first ??= seed, m);
        })(),
      },
      { sha256: (parts) => native!.sha256(parts.slice(0, 1)) },
      { hkdfSha256: (ikm, salt, info, n) => native!.hkdfSha256(ikm, salt, info, 32).slice(0, n) },
    ];
    for (const [i, change] of broken.entries()) {
      assert.equal(agreesWithNodeKeys({ ...native!, ...change }), false, `change ${i}`);
    }
  },
});

Deno.test({
  name: "a handshake between an OpenSSL server and a node:crypto client agrees, both ways round",
  ignore,
  fn() {
    const identity = ed25519KeyPair();
    for (const serverSide of [native!, nodeKeys]) {
      const client = x25519KeyPair();
      const hello = encodeClientHello(client.publicKey);
      useKeyPrimitives(serverSide);
      let server;
      try {
        server = respondToClient(hello, identity);
      } finally {
        useKeyPrimitives(serverSide === native ? nodeKeys : native!);
      }
      try {
        const { keys } = finishClient(hello, client, server.serverHello);
        assert.deepEqual(keys.send, server.keys.receive);
        assert.deepEqual(keys.receive, server.keys.send);
      } finally {
        useKeyPrimitives(nodeKeys);
      }
    }
  },
});

Deno.test({
  name:
    "an OpenSSL server gives a fresh ephemeral key each time and refuses a low-order client key",
  ignore,
  fn() {
    withNative(() => {
      const identity = ed25519KeyPair();
      const hello = encodeClientHello(x25519KeyPair().publicKey);
      const a = respondToClient(hello, identity).serverHello.subarray(5, 37);
      const b = respondToClient(hello, identity).serverHello.subarray(5, 37);
      assert.notDeepEqual(a, b);
      assert.throws(
        () => respondToClient(encodeClientHello(new Uint8Array(KEY_BYTES)), identity),
        (e: unknown) => e instanceof HandshakeError && /not a usable X25519 key/.test(e.message),
      );
    });
  },
});

Deno.test({
  name: "chooseAesGcm() puts the handshake on OpenSSL with AES-GCM, and on node:crypto with 'off'",
  ignore,
  fn() {
    try {
      assert.equal(chooseAesGcm("auto"), "openssl");
      assert.equal(keyPrimitives().name, "openssl");
      assert.equal(chooseAesGcm("off"), "node:crypto");
      assert.equal(keyPrimitives().name, "node:crypto");
    } finally {
      chooseAesGcm("off");
    }
  },
});

Deno.test({
  name: "OpenSSL's HKDF and SHA-256 give RFC 5869's values and fresh arrays, call after call",
  ignore,
  fn() {
    const hex = (b: Uint8Array) => b.toHex();
    const ikm = new Uint8Array(22).fill(0x0b);
    const salt = Uint8Array.fromHex("000102030405060708090a0b0c");
    const info = Uint8Array.fromHex("f0f1f2f3f4f5f6f7f8f9");
    // RFC 5869 appendix A, test cases 1 and 3 (the latter with no salt and no info).
    const case1 =
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
    const case3 =
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8";
    const empty = new Uint8Array(0);
    const first = native!.hkdfSha256(ikm, salt, info, 42);
    const second = native!.hkdfSha256(ikm, empty, empty, 42);
    const third = native!.hkdfSha256(ikm, salt, info, 42);
    assert.deepEqual([hex(first), hex(second), hex(third)], [case1, case3, case1]);
    assert.notEqual(first.buffer, third.buffer, "each result is an array of its own");
    // The same again after a longer input, which leaves more in any reused memory.
    native!.sha256([new Uint8Array(300).fill(9), new Uint8Array(300).fill(7)]);
    native!.hkdfSha256(new Uint8Array(64).fill(1), new Uint8Array(64).fill(2), info, 100);
    assert.equal(hex(native!.hkdfSha256(ikm, empty, empty, 42)), case3);
    const parts = [Uint8Array.fromHex("616263"), Uint8Array.fromHex("646566")];
    const abcdef = "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721";
    const h1 = native!.sha256(parts);
    const h2 = native!.sha256([new TextEncoder().encode("abcdef")]);
    assert.deepEqual([hex(h1), hex(h2)], [abcdef, abcdef]);
    assert.notEqual(h1.buffer, h2.buffer);
  },
});
