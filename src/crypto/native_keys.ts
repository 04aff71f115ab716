/**
 * X25519, SHA-256 and HKDF-SHA256 from the system's OpenSSL libcrypto through FFI, loaded beside
 * its AES-GCM (aes_gcm.ts) and used only after giving the published values and node:crypto's
 * bytes. Deno's node:crypto needs a DER key object per call; the server's side of a handshake
 * then costs about 95 µs of CPU in X25519 alone where OpenSSL needs about 65. Ed25519 signing
 * stays with node:crypto, which is the faster of the two here.
 *
 * Native memory: every EVP_PKEY made for a call is freed before the call returns.
 */

import {
  checkKey,
  checkShared,
  KEY_BYTES,
  type KeyPrimitives,
  nodeKeys,
  randomBytes,
} from "./keys.ts";

/** Functions (not macros) with these signatures in both OpenSSL 1.1.1 and 3.x. */
const SYMBOLS = {
  EVP_PKEY_new_raw_private_key: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  EVP_PKEY_new_raw_public_key: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  EVP_PKEY_get_raw_public_key: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_derive_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_derive_set_peer: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_PKEY_derive: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_sha256: { parameters: [], result: "pointer" },
  SHA256: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
  HMAC: {
    parameters: ["pointer", "buffer", "i32", "buffer", "usize", "buffer", "buffer"],
    result: "pointer",
  },
} as const;

// From openssl/obj_mac.h (stable across OpenSSL 1.1 and 3).
const NID_X25519 = 1034;
const DIGEST_BYTES = 32;
/** size_t arguments are BigInts. */
const KEY_SIZE = BigInt(KEY_BYTES);

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** The primitives from `library`, or null when it does not bind or disagrees with node:crypto. */
export function loadNativeKeys(library: string): KeyPrimitives | null {
  let lib: Lib;
  try {
    lib = Deno.dlopen(library, SYMBOLS);
  } catch {
    return null; // missing, or lacking a symbol
  }
  const bound = bindNativeKeys(lib);
  if (bound && agreesWithNodeKeys(bound)) return bound;
  // Key objects made by the checks may still be held: the library stays loaded.
  return null;
}

function bindNativeKeys(lib: Lib): KeyPrimitives | null {
  const f = lib.symbols;
  const sha = f.EVP_sha256();
  if (sha === null) return null;
  // size_t in-out lengths for the calls that take one.
  const length = new BigUint64Array(1);
  const lengthBytes = new Uint8Array(length.buffer);
  const must = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`OpenSSL ${what} failed`);
  };

  const newPrivate = (secret: Uint8Array): Deno.PointerObject => {
    checkKey(secret);
    const key = f.EVP_PKEY_new_raw_private_key(NID_X25519, null, secret, KEY_SIZE);
    must(key !== null, "EVP_PKEY_new_raw_private_key");
    return key!;
  };
  const rawPublic = (key: Deno.PointerObject): Uint8Array => {
    const out = new Uint8Array(KEY_BYTES);
    length[0] = KEY_SIZE;
    must(
      f.EVP_PKEY_get_raw_public_key(key, out, lengthBytes) === 1 &&
        length[0] === KEY_SIZE,
      "EVP_PKEY_get_raw_public_key",
    );
    return out;
  };
  const derive = (key: Deno.PointerObject, peerPublic: Uint8Array): Uint8Array => {
    checkKey(peerPublic);
    const peer = f.EVP_PKEY_new_raw_public_key(NID_X25519, null, peerPublic, KEY_SIZE);
    must(peer !== null, "EVP_PKEY_new_raw_public_key");
    const ctx = f.EVP_PKEY_CTX_new(key, null);
    try {
      must(ctx !== null, "EVP_PKEY_CTX_new");
      const out = new Uint8Array(KEY_BYTES);
      length[0] = KEY_SIZE;
      // OpenSSL refuses the all-zero result itself; checkShared holds either way.
      must(
        f.EVP_PKEY_derive_init(ctx) === 1 && f.EVP_PKEY_derive_set_peer(ctx, peer) === 1 &&
          f.EVP_PKEY_derive(ctx, out, lengthBytes) === 1 && length[0] === KEY_SIZE,
        "X25519 derive (a peer key of low order?)",
      );
      return checkShared(out);
    } finally {
      f.EVP_PKEY_CTX_free(ctx);
      f.EVP_PKEY_free(peer);
    }
  };
  const withKey = <T>(secret: Uint8Array, use: (key: Deno.PointerObject) => T): T => {
    const key = newPrivate(secret);
    try {
      return use(key);
    } finally {
      f.EVP_PKEY_free(key);
    }
  };

  const hmac = (key: Uint8Array, data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(DIGEST_BYTES);
    must(f.HMAC(sha, key, key.length, data, BigInt(data.length), out, null) !== null, "HMAC");
    return out;
  };

  return {
    name: "openssl",
    x25519Public: (secret) => withKey(secret, rawPublic),
    x25519Shared: (secret, peerPublic) => withKey(secret, (key) => derive(key, peerPublic)),
    x25519Ephemeral(peerPublic) {
      const secret = randomBytes(KEY_BYTES);
      try {
        // One key object for both: making it computes the public key already.
        return withKey(secret, (key) => ({
          publicKey: rawPublic(key),
          shared: derive(key, peerPublic),
        }));
      } finally {
        secret.fill(0);
      }
    },
    // node:crypto signs in half OpenSSL's time here (and keeps its key per seed array).
    ed25519Public: nodeKeys.ed25519Public,
    ed25519Sign: nodeKeys.ed25519Sign,
    sha256(parts) {
      let data = parts[0] ?? new Uint8Array(0);
      if (parts.length > 1) {
        data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          data.set(p, at);
          at += p.length;
        }
      }
      const out = new Uint8Array(DIGEST_BYTES);
      must(f.SHA256(data, BigInt(data.length), out) !== null, "SHA256");
      return out;
    },
    hkdfSha256(ikm, salt, info, length) {
      // RFC 5869: extract, then expand block by block.
      if (!(length > 0 && length <= 255 * DIGEST_BYTES)) {
        throw new RangeError(`HKDF-SHA256 gives 1 to ${255 * DIGEST_BYTES} bytes, not ${length}`);
      }
      const prk = hmac(salt.length > 0 ? salt : new Uint8Array(DIGEST_BYTES), ikm);
      const out = new Uint8Array(length);
      const block = new Uint8Array(DIGEST_BYTES + info.length + 1);
      let previous: Uint8Array = new Uint8Array(0);
      for (let i = 1, at = 0; at < length; i++, at += DIGEST_BYTES) {
        block.set(previous, 0);
        block.set(info, previous.length);
        block[previous.length + info.length] = i;
        previous = hmac(prk, block.subarray(0, previous.length + info.length + 1));
        out.set(previous.subarray(0, Math.min(DIGEST_BYTES, length - at)), at);
      }
      prk.fill(0);
      return out;
    },
  };
}

const same = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** RFC 7748 section 6.1 and RFC 8032 section 7.1 test 1: published values, not node's alone. */
const KNOWN = {
  alicePrivate: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
  alicePublic: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  bobPublic: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
  shared: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
  edSeed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
  edPublic: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  edSignature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
};

/**
 * True if `candidate` gives the published values and node:crypto's bytes for random keys, and
 * refuses a low-order peer key and keys of the wrong size.
 */
export function agreesWithNodeKeys(candidate: KeyPrimitives): boolean {
  try {
    const k = Object.fromEntries(
      Object.entries(KNOWN).map(([name, hex]) => [name, Uint8Array.fromHex(hex)]),
    );
    if (!same(candidate.x25519Public(k.alicePrivate), k.alicePublic)) return false;
    if (!same(candidate.x25519Shared(k.alicePrivate, k.bobPublic), k.shared)) return false;
    if (!same(candidate.ed25519Public(k.edSeed), k.edPublic)) return false;
    if (!same(candidate.ed25519Sign(k.edSeed, new Uint8Array(0)), k.edSignature)) return false;
    const secret = randomBytes(KEY_BYTES);
    const peer = nodeKeys.x25519Public(randomBytes(KEY_BYTES));
    if (!same(candidate.x25519Public(secret), nodeKeys.x25519Public(secret))) return false;
    if (!same(candidate.x25519Shared(secret, peer), nodeKeys.x25519Shared(secret, peer))) {
      return false;
    }
    // An ephemeral key's secret is not handed out: check it from the other side.
    const mine = randomBytes(KEY_BYTES);
    const first = candidate.x25519Ephemeral(nodeKeys.x25519Public(mine));
    const second = candidate.x25519Ephemeral(nodeKeys.x25519Public(mine));
    if (!same(nodeKeys.x25519Shared(mine, first.publicKey), first.shared)) return false;
    if (same(first.publicKey, second.publicKey)) return false;
    const seed = randomBytes(KEY_BYTES);
    const message = randomBytes(60);
    if (!same(candidate.ed25519Public(seed), nodeKeys.ed25519Public(seed))) return false;
    if (!same(candidate.ed25519Sign(seed, message), nodeKeys.ed25519Sign(seed, message))) {
      return false;
    }
    const parts = [randomBytes(37), randomBytes(69), new Uint8Array(0)];
    if (!same(candidate.sha256(parts), nodeKeys.sha256(parts))) return false;
    if (!same(candidate.sha256([]), nodeKeys.sha256([]))) return false;
    const info = new TextEncoder().encode("parley/1 client to server");
    for (const size of [32, 33, 64, 100]) {
      const ikm = randomBytes(32);
      const salt = randomBytes(32);
      if (
        !same(
          candidate.hkdfSha256(ikm, salt, info, size),
          nodeKeys.hkdfSha256(ikm, salt, info, size),
        )
      ) return false;
    }
    if (!refuses(() => candidate.x25519Shared(secret, new Uint8Array(KEY_BYTES)))) return false;
    // Every server handshake takes this path: it must refuse a low-order key on its own.
    if (!refuses(() => candidate.x25519Ephemeral(new Uint8Array(KEY_BYTES)))) return false;
    if (!refuses(() => candidate.x25519Public(new Uint8Array(31)))) return false;
    if (!refuses(() => candidate.ed25519Sign(new Uint8Array(33), message))) return false;
    return true;
  } catch {
    return false;
  }
}

function refuses(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch {
    return true;
  }
}
