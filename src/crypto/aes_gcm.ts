/**
 * AES-256-GCM for the frame cipher, from one of two implementations that give the same bytes:
 * node:crypto (always there) or the system's OpenSSL libcrypto through FFI. On the machines we
 * measured, Deno's node:crypto seals at about 150 MB/s and 7 µs per small frame; OpenSSL at
 * about 2.5 GB/s and 2 µs, which lifts relay and fan-out throughput by a quarter or more.
 * OpenSSL is used only when asked for, when the process may use FFI (`--allow-ffi`), when
 * libcrypto.so.3 loads, and when it passes a known-answer check against node:crypto.
 */

import * as nc from "node:crypto";

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

export interface AesGcm {
  /** "node:crypto" or "openssl". */
  readonly name: string;
  /** Writes the ciphertext, then the tag, into `out` (plaintext length + 16 bytes). */
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
  ): void;
  /** Writes the plaintext into `out` (ciphertext length); throws if authentication fails. */
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
    const decipher = nc.createDecipheriv("aes-256-gcm", key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    out.set(decipher.update(ciphertext));
    decipher.final(); // throws on a bad tag
  },
};

const SYMBOLS = {
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

// From openssl/evp.h (stable across OpenSSL 1.1 and 3).
const EVP_CTRL_GCM_GET_TAG = 0x10;
const EVP_CTRL_GCM_SET_TAG = 0x11;

/** AES-256-GCM through libcrypto; null when FFI is not allowed or the library is missing. */
function loadOpenSsl(): AesGcm | null {
  // macOS's own libcrypto aborts a process that loads it; elsewhere the name differs.
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen("libcrypto.so.3", SYMBOLS);
  } catch {
    return null;
  }
  const f = lib.symbols;
  const ctx = f.EVP_CIPHER_CTX_new();
  const cipher = f.EVP_aes_256_gcm();
  if (ctx === null || cipher === null) {
    lib.close();
    return null;
  }
  // One context for the whole process, set up afresh for each frame: JavaScript runs one
  // frame at a time, and an idle connection then holds no native memory.
  const outLength = new Uint8Array(4);
  const must = (ok: number, what: string) => {
    if (ok !== 1) throw new Error(`OpenSSL ${what} failed`);
  };
  return {
    name: "openssl",
    seal(key, nonce, aad, plaintext, out) {
      checkSizes(key, nonce, plaintext, out, TAG_BYTES);
      const tag = out.subarray(plaintext.length);
      must(f.EVP_EncryptInit_ex(ctx, cipher, null, key, nonce), "EncryptInit");
      must(f.EVP_EncryptUpdate(ctx, null, outLength, aad, aad.length), "EncryptUpdate (AAD)");
      // An empty buffer reaches C as a null pointer, which GCM would take as more AAD.
      if (plaintext.length > 0) {
        must(
          f.EVP_EncryptUpdate(ctx, out, outLength, plaintext, plaintext.length),
          "EncryptUpdate",
        );
      }
      must(f.EVP_EncryptFinal_ex(ctx, tag, outLength), "EncryptFinal");
      must(f.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag), "GET_TAG");
    },
    open(key, nonce, aad, ciphertext, tag, out) {
      checkSizes(key, nonce, ciphertext, out, 0);
      if (tag.length !== TAG_BYTES) throw new RangeError(`A tag is ${TAG_BYTES} bytes`);
      must(f.EVP_DecryptInit_ex(ctx, cipher, null, key, nonce), "DecryptInit");
      must(f.EVP_DecryptUpdate(ctx, null, outLength, aad, aad.length), "DecryptUpdate (AAD)");
      if (ciphertext.length > 0) {
        must(
          f.EVP_DecryptUpdate(ctx, out, outLength, ciphertext, ciphertext.length),
          "DecryptUpdate",
        );
      }
      must(f.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag), "SET_TAG");
      // The final step writes nothing for GCM; it compares the tag.
      if (f.EVP_DecryptFinal_ex(ctx, out, outLength) !== 1) {
        out.fill(0); // no unauthenticated plaintext is left behind
        throw new Error("OpenSSL: the tag does not match");
      }
    },
  };
}

/** True if `candidate` seals and opens exactly as node:crypto does, and rejects a bad tag. */
export function agreesWithNode(candidate: AesGcm): boolean {
  const key = Uint8Array.from({ length: KEY_BYTES }, (_, i) => i * 7 + 1);
  const nonce = Uint8Array.from({ length: NONCE_BYTES }, (_, i) => 255 - i);
  const aad = new Uint8Array([0, 0, 0, 45]);
  for (const size of [0, 1, 15, 16, 17, 100, 4099]) {
    const plaintext = Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 255);
    const expected = new Uint8Array(size + TAG_BYTES);
    const got = new Uint8Array(size + TAG_BYTES);
    nodeAesGcm.seal(key, nonce, aad, plaintext, expected);
    candidate.seal(key, nonce, aad, plaintext, got);
    if (!got.every((b, i) => b === expected[i])) return false;
    const back = new Uint8Array(size);
    candidate.open(key, nonce, aad, got.subarray(0, size), got.subarray(size), back);
    if (!back.every((b, i) => b === plaintext[i])) return false;
    got[size] ^= 1;
    try {
      candidate.open(key, nonce, aad, got.subarray(0, size), got.subarray(size), back);
      return false;
    } catch {
      // Rejected, as it must be.
    }
  }
  return true;
}

let openSsl: AesGcm | null | undefined;
let active: AesGcm = nodeAesGcm;

/** The implementation frames are sealed and opened with now. */
export function aesGcm(): AesGcm {
  return active;
}

/**
 * Chooses the implementation for every connection of this process: OpenSSL when `native` and
 * it is usable, node:crypto otherwise. Returns the name of the one in use.
 */
export function chooseAesGcm(native: boolean): string {
  if (native) {
    if (openSsl === undefined) {
      try {
        const loaded = loadOpenSsl();
        openSsl = loaded && agreesWithNode(loaded) ? loaded : null;
      } catch {
        openSsl = null;
      }
    }
    active = openSsl ?? nodeAesGcm;
  } else {
    active = nodeAesGcm;
  }
  return active.name;
}
