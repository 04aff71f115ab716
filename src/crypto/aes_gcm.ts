/**
 * AES-256-GCM for the frame cipher, from one of two implementations that give the same bytes:
 * node:crypto (always there) or the system's OpenSSL libcrypto through FFI. On the machines we
 * measured, Deno's node:crypto seals at about 150 MB/s and 7 µs per small frame; OpenSSL at
 * about 2.5 GB/s and 2 µs, which lifts relay and fan-out throughput by a quarter or more.
 * OpenSSL is used only when asked for, when the process may use FFI (`--allow-ffi`), when
 * a libcrypto of OpenSSL 1.1.1 or later loads (OPENSSL_LIBRARIES, tried in order), and when it
 * passes known-answer checks (a published vector, node:crypto's output, tampered inputs
 * rejected).
 */

import * as nc from "node:crypto";
import { TAG_BYTES } from "../protocol/frame.ts";
import { type KeyPrimitives, nodeKeys, useKeyPrimitives } from "./keys.ts";
import { loadNativeKeys } from "./native_keys.ts";

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;

export interface AesGcm {
  /** "node:crypto" or "openssl". */
  readonly name: string;
  /** The library file it was loaded from ("" for node:crypto). */
  readonly library: string;
  /** The library's own version text, such as "OpenSSL 3.0.13 30 Jan 2024" ("" for node:crypto). */
  readonly version: string;
  /** Writes the ciphertext, then the tag, into `out` (plaintext length + 16 bytes). */
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
  ): void;
  /**
   * Writes the plaintext into `out` (ciphertext length), which may be `ciphertext` itself
   * (decryption in place); throws if authentication fails, and then leaves `out` zeroed.
   */
  open(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
    out: Uint8Array,
  ): void;
}

function checkSizes(
  key: Uint8Array,
  nonce: Uint8Array,
  input: Uint8Array,
  out: Uint8Array,
  extra: number,
) {
  if (key.length !== KEY_BYTES) throw new RangeError(`An AES-256-GCM key is ${KEY_BYTES} bytes`);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`A nonce is ${NONCE_BYTES} bytes`);
  if (out.length !== input.length + extra) {
    throw new RangeError(`Output of ${out.length} bytes for ${input.length} bytes of input`);
  }
}

export const nodeAesGcm: AesGcm = {
  name: "node:crypto",
  library: "",
  version: "",
  seal(key, nonce, aad, plaintext, out) {
    checkSizes(key, nonce, plaintext, out, TAG_BYTES);
    const cipher = nc.createCipheriv("aes-256-gcm", key, nonce);
    cipher.setAAD(aad);
    out.set(cipher.update(plaintext));
    cipher.final();
    out.set(cipher.getAuthTag(), plaintext.length);
  },
  open(key, nonce, aad, ciphertext, tag, out) {
    checkSizes(key, nonce, ciphertext, out, 0);
    if (tag.length !== TAG_BYTES) throw new RangeError(`A tag is ${TAG_BYTES} bytes`);
    try {
      const decipher = nc.createDecipheriv("aes-256-gcm", key, nonce);
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      out.set(decipher.update(ciphertext));
      decipher.final(); // throws on a bad tag
    } catch (e) {
      out.fill(0); // no unauthenticated plaintext is left behind
      throw e;
    }
  },
};

/**
 * Every symbol is a function (not a macro) with this signature in both OpenSSL 1.1.1 and 3.x; an
 * older libcrypto (1.0.x has no OPENSSL_init_crypto or OpenSSL_version_num) fails to bind.
 */
const SYMBOLS = {
  OPENSSL_init_crypto: { parameters: ["u64", "pointer"], result: "i32" },
  OpenSSL_version_num: { parameters: [], result: "u64" },
  OpenSSL_version: { parameters: ["i32"], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_EncryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_DecryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_EncryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_DecryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_EncryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_DecryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
} as const;

/**
 * From openssl/crypto.h (OpenSSL 1.1.1b and later): no clean-up handler at exit. The process's
 * memory goes at exit anyway, and a library freeing its state from an exit handler while the
 * runtime's other threads still run is a risk that gains nothing.
 */
const OPENSSL_INIT_NO_ATEXIT = 0x00080000n;
/** OPENSSL_INIT_NO_ATEXIT came in 1.1.1b; 1.1.0 and older are past their end of life anyway. */
const OPENSSL_MIN_VERSION = 0x1010102fn;
// From openssl/evp.h (stable across OpenSSL 1.1 and 3).
const EVP_CTRL_GCM_GET_TAG = 0x10;
const EVP_CTRL_GCM_SET_TAG = 0x11;

/**
 * The libcrypto files tried, in order: OpenSSL 3, then 1.1, then whatever the unversioned name is
 * (a binding check refuses one that is too old). On macOS only Homebrew's files, by full path: the
 * system's own libcrypto aborts a process that loads it, and a bare name could be found in the
 * working directory.
 */
export const OPENSSL_LIBRARIES: readonly string[] = Deno.build.os === "linux"
  ? ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"]
  : Deno.build.os === "darwin"
  ? [
    "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
    "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
    "/opt/homebrew/opt/openssl@1.1/lib/libcrypto.1.1.dylib",
    "/usr/local/opt/openssl@1.1/lib/libcrypto.1.1.dylib",
  ]
  : [];

/**
 * AES-256-GCM through the first of `libraries` that loads, binds and agrees with node:crypto; null
 * when FFI is not allowed or none does. The FFI permission is given up afterwards either way: the
 * process keeps these few functions and can load no other native code.
 */
function loadOpenSsl(libraries: readonly string[]): AesGcm | null {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      ffiDenied = true;
      return null;
    }
    for (const library of libraries) {
      let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
      try {
        lib = Deno.dlopen(library, SYMBOLS);
      } catch {
        continue; // missing, or lacking a symbol
      }
      const bound = bindOpenSsl(lib, library);
      if (bound && agreesWithNode(bound)) {
        // The handshake's primitives from the same library, while FFI is still allowed.
        nativeKeys = loadNativeKeys(library);
        return bound;
      }
      // A library that bound but disagrees keeps its contexts: closing it under them would be
      // the riskier choice, and this happens at most once per file.
      if (!bound) lib.close();
    }
    return null;
  } finally {
    // A process that may run programs can run native code anyway (tests, the bench), and
    // dropping FFI would cost it its "all" grant, which Deno wants for /proc; keep it there.
    if (Deno.permissions.querySync({ name: "run" }).state !== "granted") {
      Deno.permissions.revokeSync({ name: "ffi" });
    }
  }
}

/** The bound functions, or null (the caller closes `lib`) when this libcrypto will not do. */
function bindOpenSsl(lib: Deno.DynamicLibrary<typeof SYMBOLS>, library: string): AesGcm | null {
  const f = lib.symbols;
  // OpenSSL_version_num only reads a constant, so it may come before the init call.
  if (BigInt(f.OpenSSL_version_num()) < OPENSSL_MIN_VERSION) return null;
  // The first call that may set anything up, so that no other call has set up the exit handler.
  if (f.OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, null) !== 1) return null;
  const versionText = f.OpenSSL_version(0); // OPENSSL_VERSION: "OpenSSL 3.0.13 30 Jan 2024"
  const version = versionText === null ? "" : Deno.UnsafePointerView.getCString(versionText);
  // One context per direction for the whole process, given the cipher once and then only a key
  // and nonce per frame: JavaScript seals or opens one frame at a time, and an idle connection
  // then holds no native memory.
  const sealCtx = f.EVP_CIPHER_CTX_new();
  const openCtx = f.EVP_CIPHER_CTX_new();
  const cipher = f.EVP_aes_256_gcm();
  if (
    sealCtx === null || openCtx === null || cipher === null ||
    f.EVP_EncryptInit_ex(sealCtx, cipher, null, null, null) !== 1 ||
    f.EVP_DecryptInit_ex(openCtx, cipher, null, null, null) !== 1
  ) {
    return null;
  }
  const outLength = new Uint8Array(4);
  const must = (ok: number, what: string) => {
    if (ok !== 1) throw new Error(`OpenSSL ${what} failed`);
  };
  return {
    name: "openssl",
    library,
    version,
    seal(key, nonce, aad, plaintext, out) {
      checkSizes(key, nonce, plaintext, out, TAG_BYTES);
      const tag = out.subarray(plaintext.length);
      must(f.EVP_EncryptInit_ex(sealCtx, null, null, key, nonce), "EncryptInit");
      must(f.EVP_EncryptUpdate(sealCtx, null, outLength, aad, aad.length), "EncryptUpdate (AAD)");
      // An empty buffer reaches C as a null pointer; skip the call rather than rely on that.
      if (plaintext.length > 0) {
        must(
          f.EVP_EncryptUpdate(sealCtx, out, outLength, plaintext, plaintext.length),
          "EncryptUpdate",
        );
      }
      must(f.EVP_EncryptFinal_ex(sealCtx, tag, outLength), "EncryptFinal");
      must(f.EVP_CIPHER_CTX_ctrl(sealCtx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag), "GET_TAG");
    },
    open(key, nonce, aad, ciphertext, tag, out) {
      checkSizes(key, nonce, ciphertext, out, 0);
      if (tag.length !== TAG_BYTES) throw new RangeError(`A tag is ${TAG_BYTES} bytes`);
      try {
        must(f.EVP_DecryptInit_ex(openCtx, null, null, key, nonce), "DecryptInit");
        must(f.EVP_DecryptUpdate(openCtx, null, outLength, aad, aad.length), "DecryptUpdate (AAD)");
        if (ciphertext.length > 0) {
          must(
            f.EVP_DecryptUpdate(openCtx, out, outLength, ciphertext, ciphertext.length),
            "DecryptUpdate",
          );
        }
        must(f.EVP_CIPHER_CTX_ctrl(openCtx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag), "SET_TAG");
        // The final step writes nothing for GCM; it compares the tag.
        if (f.EVP_DecryptFinal_ex(openCtx, out, outLength) !== 1) {
          throw new Error("OpenSSL: the tag does not match");
        }
      } catch (e) {
        out.fill(0); // no unauthenticated plaintext is left behind
        throw e;
      }
    },
  };
}

/**
 * A published AES-256-GCM vector (test case 16 of McGrew and Viega's GCM specification): key,
 * nonce, associated data, plaintext, ciphertext, tag.
 */
const KNOWN = [
  "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
  "cafebabefacedbaddecaf888",
  "feedfacedeadbeeffeedfacedeadbeefabaddad2",
  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
  "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
  "76fc6ece0f4e1768cddf8853bb2d551b",
].map((hex) => Uint8Array.fromHex(hex));

const same = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** True if `candidate` opens `ciphertext|tag` to `plaintext`, or throws when it should not. */
function opens(
  candidate: AesGcm,
  args: [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array],
  plaintext: Uint8Array | null,
): boolean {
  const out = new Uint8Array(args[3].length);
  try {
    candidate.open(...args, out);
  } catch {
    return plaintext === null && out.every((b) => b === 0);
  }
  return plaintext !== null && same(out, plaintext);
}

/**
 * True if `candidate` gives the published vector and node:crypto's bytes for a range of sizes,
 * opens them again, and rejects a change to the ciphertext, the tag (first and last byte) or the
 * associated data.
 */
export function agreesWithNode(candidate: AesGcm): boolean {
  try {
    const [k, n, a, p, c, t] = KNOWN;
    const sealed = new Uint8Array(p.length + TAG_BYTES);
    candidate.seal(k, n, a, p, sealed);
    if (!same(sealed.subarray(0, c.length), c) || !same(sealed.subarray(c.length), t)) {
      return false;
    }
    if (!opens(candidate, [k, n, a, c, t], p)) return false;
    const key = Uint8Array.from({ length: KEY_BYTES }, (_, i) => i * 7 + 1);
    const nonce = Uint8Array.from({ length: NONCE_BYTES }, (_, i) => 255 - i);
    const aad = new Uint8Array([0, 0, 0, 45]);
    for (const size of [0, 1, 15, 16, 17, 100, 4099]) {
      const plaintext = Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 255);
      const expected = new Uint8Array(size + TAG_BYTES);
      const got = new Uint8Array(size + TAG_BYTES);
      nodeAesGcm.seal(key, nonce, aad, plaintext, expected);
      candidate.seal(key, nonce, aad, plaintext, got);
      if (!same(got, expected)) return false;
      const ct = got.subarray(0, size);
      const tag = got.subarray(size);
      if (!opens(candidate, [key, nonce, aad, ct, tag], plaintext)) return false;
      const flips: [Uint8Array, number][] = [[tag, 0], [tag, TAG_BYTES - 1], [aad, 3]];
      if (size > 0) flips.push([ct, size - 1]);
      for (const [buffer, at] of flips) {
        buffer[at] ^= 1;
        const rejected = opens(candidate, [key, nonce, aad, ct, tag], null);
        buffer[at] ^= 1;
        if (!rejected) return false;
      }
    }
    return true;
  } catch {
    return false;
  }
}

let openSsl: AesGcm | null | undefined;
/** The handshake's primitives from the library openSsl came from, if they bound and agree. */
let nativeKeys: KeyPrimitives | null = null;
/** Whether OpenSSL was not tried because the process may not use FFI. */
let ffiDenied = false;
let active: AesGcm = nodeAesGcm;

/**
 * For a process that will load no native code and run no program from now on (`parley serve`
 * once it has chosen): gives up both permissions. Both, because a process that may run programs
 * can run native code anyway, so under `-A` dropping FFI alone would change nothing. Not for a
 * process that still spawns programs (tests, the bench), which keep what they were given.
 */
export function giveUpNativeCode(): void {
  Deno.permissions.revokeSync({ name: "run" });
  Deno.permissions.revokeSync({ name: "ffi" });
}

/** The implementation frames are sealed and opened with now. */
export function aesGcm(): AesGcm {
  return active;
}

/**
 * `crypto.nativeAes`: "auto" uses OpenSSL where it works and node:crypto elsewhere, "require"
 * refuses to start without OpenSSL, "off" uses node:crypto. The booleans of older config files
 * mean "auto" (true) and "off" (false).
 */
export type NativeAes = "auto" | "require" | "off";

/** Thrown for "require" when no OpenSSL could be used; the message says why and what to do. */
export class NativeAesUnavailableError extends Error {
  override name = "NativeAesUnavailableError";
}

/**
 * Chooses the implementation for every connection of this process (a server process has one
 * server) and returns its name. The first call that is not "off" tries `libraries` in order and
 * gives up the FFI permission; later calls reuse what it found.
 */
export function chooseAesGcm(
  mode: NativeAes | boolean,
  libraries: readonly string[] = OPENSSL_LIBRARIES,
): string {
  const want = mode === true ? "auto" : mode === false ? "off" : mode;
  if (want !== "off" && openSsl === undefined) openSsl = loadOpenSsl(libraries);
  if (want === "require" && !openSsl) {
    const tried = libraries.length > 0 ? libraries.join(", ") : `none on ${Deno.build.os}`;
    throw new NativeAesUnavailableError(
      ffiDenied
        ? `crypto.nativeAes is "require" but this process may not use FFI: run it with --allow-ffi, or set crypto.nativeAes to "auto"`
        : `crypto.nativeAes is "require" but no OpenSSL libcrypto (1.1.1 or later) loaded and passed its checks (tried: ${tried}): install OpenSSL, or set crypto.nativeAes to "auto"`,
    );
  }
  active = want !== "off" && openSsl ? openSsl : nodeAesGcm;
  // The same choice for the handshake: native code for both, or for neither.
  useKeyPrimitives(active === openSsl && nativeKeys ? nativeKeys : nodeKeys);
  return active.name;
}
