/**
 * The two AES-256-GCM implementations: OpenSSL through FFI must give node:crypto's bytes, reject
 * what node:crypto rejects, and never be handed buffers of the wrong size.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type AesGcm,
  aesGcm,
  agreesWithNode,
  chooseAesGcm,
  nodeAesGcm,
} from "../../src/crypto/aes_gcm.ts";
import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import { FRAME_HEADER_BYTES } from "../../src/protocol/frame.ts";
import { ParleyClient } from "../../src/client/client.ts";
import { fastConfig, parley, ROOT, ServerProcess } from "../helpers/cli.ts";

/**
 * Whether this process got OpenSSL: on Linux with libcrypto.so.3, under `deno test -A`. Asked
 * first, since the first choice gives up the FFI permission.
 */
const HAVE_OPENSSL = chooseAesGcm(true) === "openssl";
chooseAesGcm(false);
if (!HAVE_OPENSSL && Deno.build.os === "linux") {
  console.warn("aes_gcm_test: libcrypto.so.3 did not load here; the OpenSSL tests are skipped");
}

/** The OpenSSL implementation, chosen and then set back to node:crypto for other tests. */
function openSsl(): AesGcm {
  assert.equal(chooseAesGcm(true), "openssl");
  const impl = aesGcm();
  chooseAesGcm(false);
  return impl;
}

const random = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
};

Deno.test("chooseAesGcm picks OpenSSL when it loads, node:crypto when asked or when it cannot", () => {
  assert.equal(chooseAesGcm(false), "node:crypto");
  assert.equal(aesGcm(), nodeAesGcm);
  assert.equal(chooseAesGcm(true), HAVE_OPENSSL ? "openssl" : "node:crypto");
  chooseAesGcm(false);
  assert.equal(aesGcm(), nodeAesGcm);
});

Deno.test("a process with the server's permissions may load no native code once it has chosen", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { chooseAesGcm } from ${
        JSON.stringify(new URL("../../src/crypto/aes_gcm.ts", import.meta.url).href)
      };
      const before = Deno.permissions.querySync({ name: "ffi" }).state;
      const chosen = chooseAesGcm(true);
      let loads = true;
      try { Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } }); } catch { loads = false; }
      console.log(JSON.stringify({ before, chosen, after: Deno.permissions.querySync({ name: "ffi" }).state, loads }));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...(await startTaskPermissions()), "--quiet", script],
      stdin: "null",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const seen = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(seen, {
      before: "granted",
      chosen: HAVE_OPENSSL ? "openssl" : "node:crypto",
      after: "denied", // no prompt either: there is no terminal to ask at
      loads: false,
    });
  } finally {
    await Deno.remove(script);
  }
});

Deno.test("the known-answer check turns down implementations that are subtly wrong", () => {
  assert.ok(agreesWithNode(nodeAesGcm));
  const variant = (patch: Partial<AesGcm>): AesGcm => ({
    ...nodeAesGcm,
    name: "variant",
    ...patch,
  });
  // Checks only the first 4 bytes of the tag (a wrong length given to SET_TAG, say).
  const shortTag = variant({
    open(key, nonce, aad, ciphertext, tag, out) {
      // GCM's key stream is the same both ways: sealing the ciphertext gives the plaintext,
      // and sealing that gives the true tag, of which this one compares 4 bytes only.
      const n = ciphertext.length;
      const plain = new Uint8Array(n + 16);
      nodeAesGcm.seal(key, nonce, aad, ciphertext, plain);
      const resealed = new Uint8Array(n + 16);
      nodeAesGcm.seal(key, nonce, aad, plain.subarray(0, n), resealed);
      if (![0, 1, 2, 3].every((i) => resealed[n + i] === tag[i])) throw new Error("bad tag");
      out.set(plain.subarray(0, n));
    },
  });
  // Ignores the associated data when opening.
  const noAad = variant({
    open: (key, nonce, _aad, ciphertext, tag, out) =>
      nodeAesGcm.open(key, nonce, new Uint8Array(4), ciphertext, tag, out),
  });
  // Never rejects anything.
  const trusting = variant({
    open(key, nonce, aad, ciphertext, tag, out) {
      try {
        nodeAesGcm.open(key, nonce, aad, ciphertext, tag, out);
      } catch {
        // Carries on with whatever it has.
      }
    },
  });
  // Seals with a different tag for empty input.
  const emptyTag = variant({
    seal(key, nonce, aad, plaintext, out) {
      nodeAesGcm.seal(key, nonce, aad, plaintext, out);
      if (plaintext.length === 0) out[0] ^= 1;
    },
  });
  // Leaves what it decrypted in the output after a bad tag.
  const leaky = variant({
    open(key, nonce, aad, ciphertext, tag, out) {
      const keep = new Uint8Array(out.length);
      try {
        nodeAesGcm.open(key, nonce, aad, ciphertext, tag, keep);
        out.set(keep);
      } catch (e) {
        out.fill(1);
        throw e;
      }
    },
  });
  for (const [name, impl] of Object.entries({ shortTag, noAad, trusting, emptyTag, leaky })) {
    assert.equal(agreesWithNode(impl), false, name);
  }
});

Deno.test({
  name: "OpenSSL seals and opens exactly as node:crypto, from empty to 200 KB",
  ignore: !HAVE_OPENSSL,
  fn() {
    const native = openSsl();
    assert.ok(agreesWithNode(native));
    for (const size of [0, 1, 12, 16, 31, 33, 255, 4096, 65_537, 200_000]) {
      for (let round = 0; round < 3; round++) {
        const key = random(32);
        const nonce = random(12);
        const aad = random(round * 7);
        const plaintext = random(size);
        const a = new Uint8Array(size + 16);
        const b = new Uint8Array(size + 16);
        nodeAesGcm.seal(key, nonce, aad, plaintext, a);
        native.seal(key, nonce, aad, plaintext, b);
        assert.deepEqual(b, a, `size ${size}`);
        // Each opens what the other sealed.
        const viaNative = new Uint8Array(size);
        const viaNode = new Uint8Array(size);
        native.open(key, nonce, aad, a.subarray(0, size), a.subarray(size), viaNative);
        nodeAesGcm.open(key, nonce, aad, b.subarray(0, size), b.subarray(size), viaNode);
        assert.deepEqual(viaNative, plaintext);
        assert.deepEqual(viaNode, plaintext);
      }
    }
  },
});

Deno.test("both implementations reject a changed ciphertext, tag, header or nonce and leave no plaintext", () => {
  for (const impl of HAVE_OPENSSL ? [nodeAesGcm, openSsl()] : [nodeAesGcm]) {
    const key = random(32);
    const nonce = random(12);
    const aad = new Uint8Array([0, 0, 0, 116]);
    const plaintext = new TextEncoder().encode("x".repeat(100));
    const sealed = new Uint8Array(116);
    impl.seal(key, nonce, aad, plaintext, sealed);
    const cases: [string, (c: Uint8Array, t: Uint8Array, a: Uint8Array, n: Uint8Array) => void][] =
      [
        ["ciphertext", (c) => c[40] ^= 1],
        ["tag", (_c, t) => t[15] ^= 0x80],
        ["header", (_c, _t, a) => a[3] ^= 1],
        ["nonce", (_c, _t, _a, n) => n[11] ^= 1],
      ];
    for (const [what, change] of cases) {
      const c = sealed.slice(0, 100);
      const t = sealed.slice(100);
      const a = aad.slice();
      const n = nonce.slice();
      change(c, t, a, n);
      const out = new Uint8Array(100);
      assert.throws(() => impl.open(key, n, a, c, t, out), Error, `${impl.name}: ${what}`);
      assert.ok(out.every((x) => x === 0), `${impl.name} left plaintext after a bad ${what}`);
    }
  }
});

Deno.test("both implementations open in place, over the ciphertext, as the channel does", () => {
  for (const impl of HAVE_OPENSSL ? [nodeAesGcm, openSsl()] : [nodeAesGcm]) {
    for (const size of [0, 1, 100, 4096, 70_000]) {
      const key = random(32);
      const nonce = random(12);
      const aad = random(4);
      const plaintext = random(size);
      // The frame sits at an odd offset inside a bigger read buffer, as it does on the wire.
      const buffer = random(size + 16 + 7);
      const frame = buffer.subarray(3, 3 + size + 16);
      const around = [buffer[0], buffer[1], buffer[2], ...buffer.subarray(3 + size + 16)];
      impl.seal(key, nonce, aad, plaintext, frame);
      const ciphertext = frame.subarray(0, size);
      impl.open(key, nonce, aad, ciphertext, frame.subarray(size), ciphertext);
      assert.deepEqual(ciphertext, plaintext, `${impl.name}, ${size} bytes`);
      assert.deepEqual(
        [buffer[0], buffer[1], buffer[2], ...buffer.subarray(3 + size + 16)],
        around,
      );
      if (size === 0) continue;
      // A forged frame opened in place fails and leaves zeros, not unauthenticated plaintext.
      impl.seal(key, nonce, aad, plaintext, frame);
      frame[size] ^= 1;
      assert.throws(() => impl.open(key, nonce, aad, ciphertext, frame.subarray(size), ciphertext));
      assert.ok(ciphertext.every((x) => x === 0), `${impl.name} left plaintext in place`);
    }
  }
});

Deno.test("both implementations refuse buffers of the wrong size before touching them", () => {
  const impls = HAVE_OPENSSL ? [nodeAesGcm, openSsl()] : [nodeAesGcm];
  for (const impl of impls) {
    const key = random(32);
    const nonce = random(12);
    const pt = random(64);
    assert.throws(() => impl.seal(key, nonce, pt, pt, new Uint8Array(79)), RangeError, impl.name);
    assert.throws(() => impl.seal(key, nonce, pt, pt, new Uint8Array(81)), RangeError, impl.name);
    assert.throws(() => impl.seal(random(16), nonce, pt, pt, new Uint8Array(80)), RangeError);
    assert.throws(() => impl.seal(key, random(16), pt, pt, new Uint8Array(80)), RangeError);
    const sealed = new Uint8Array(80);
    impl.seal(key, nonce, pt, pt, sealed);
    const ct = sealed.subarray(0, 64);
    const tag = sealed.subarray(64);
    assert.throws(() => impl.open(key, nonce, pt, ct, tag, new Uint8Array(63)), RangeError);
    assert.throws(() => impl.open(key, nonce, pt, ct, tag.subarray(0, 8), new Uint8Array(64)));
    const out = new Uint8Array(64);
    impl.open(key, nonce, pt, ct, tag, out);
    assert.deepEqual(out, pt);
  }
});

Deno.test({
  name: "frames sealed with one implementation open with the other, in order",
  ignore: !HAVE_OPENSSL,
  fn() {
    const key = random(32);
    const sealer = new FrameSealer(key);
    const opener = new FrameOpener(key);
    try {
      for (let i = 0; i < 6; i++) {
        const text = new TextEncoder().encode(`frame ${i} `.repeat(i * 50));
        chooseAesGcm(i % 2 === 0);
        const frame = sealer.seal(text);
        chooseAesGcm(i % 2 === 1);
        const header = frame.slice(0, FRAME_HEADER_BYTES);
        const body = frame.slice(FRAME_HEADER_BYTES);
        assert.deepEqual(opener.open({ header, body }), text);
      }
    } finally {
      chooseAesGcm(false);
    }
  },
});

/** The --allow-* flags of `deno task start`, the command README gives for running a server. */
async function startTaskPermissions(): Promise<string[]> {
  const deno = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  return (deno.tasks.start as string).split(" ").filter((a) => a.startsWith("--allow-"));
}

Deno.test("the server of `deno task start` uses OpenSSL, and without --allow-ffi node:crypto; a client is served either way", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = await fastConfig(dir);
    const start = await startTaskPermissions();
    assert.ok(start.includes("--allow-ffi"), `deno task start lacks --allow-ffi: ${start}`);
    const withoutFfi = start.filter((p) => p !== "--allow-ffi");
    for (
      const [n, permissions, want] of [[0, start, HAVE_OPENSSL ? "openssl" : "node:crypto"], [
        1,
        withoutFfi,
        "node:crypto",
      ]] as const
    ) {
      const server = await ServerProcess.start(join(dir, `data${n}`), config, 0, [], [
        ...permissions,
      ]);
      try {
        assert.match(server.out.text, new RegExp(`server\\.listening .*aes=${want}`));
        const client = await ParleyClient.connect({
          host: "127.0.0.1",
          port: server.port,
          knownHosts: null,
        });
        try {
          await client.register(`user${n}`, "a long password");
          await client.login(`user${n}`, "a long password");
          assert.ok(await client.ping() >= 0);
        } finally {
          client.close();
        }
      } finally {
        assert.equal((await server.stop()).code, 0, server.out.text);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs `body` (TypeScript using `chooseAesGcm` and `aesGcm`) in a fresh process; its JSON line. */
async function inChild(body: string, permissions = ["--allow-all"]): Promise<unknown> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { aesGcm, chooseAesGcm } from ${
        JSON.stringify(new URL("../../src/crypto/aes_gcm.ts", import.meta.url).href)
      };
      const tried = (f: () => string) => { try { return f(); } catch (e) { return (e as Error).name + ": " + (e as Error).message; } };
      ${body}`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, "--quiet", script],
      stdin: "null",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(script);
  }
}

Deno.test("chooseAesGcm falls back to node:crypto past a library that is not there, and 'require' refuses with a sentence", async () => {
  const seen = await inChild(
    `console.log(JSON.stringify({
      auto: chooseAesGcm("auto", ["libparley-no-such-crypto.so.9"]),
      require: tried(() => chooseAesGcm("require", ["libparley-no-such-crypto.so.9"])),
      after: aesGcm().name,
    }));`,
  ) as Record<string, string>;
  assert.equal(seen.auto, "node:crypto");
  assert.equal(seen.after, "node:crypto");
  assert.match(
    seen.require,
    /^NativeAesUnavailableError: crypto\.nativeAes is "require" but no OpenSSL libcrypto .*libparley-no-such-crypto\.so\.9.*set crypto\.nativeAes to "auto"$/,
  );
});

Deno.test({
  name: "chooseAesGcm tries the libraries in order and keeps the first that works",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const seen = await inChild(
      `const name = chooseAesGcm("require", ["libparley-no-such-crypto.so.9", "libc.so.6", "libcrypto.so.3"]);
      console.log(JSON.stringify({ name, library: aesGcm().library, version: aesGcm().version,
        off: chooseAesGcm(false), on: chooseAesGcm(true) }));`,
    ) as Record<string, string>;
    // libc.so.6 loads but lacks the symbols: it is passed over, not fatal.
    assert.equal(seen.name, "openssl");
    assert.equal(seen.library, "libcrypto.so.3");
    assert.match(seen.version, /^OpenSSL 3\./);
    assert.equal(seen.off, "node:crypto");
    assert.equal(seen.on, "openssl");
  },
});

Deno.test("parley serve with crypto.nativeAes 'require' and no FFI permission refuses to start, saying why", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = await fastConfig(dir, { crypto: { nativeAes: "require" } });
    const withoutFfi = (await startTaskPermissions()).filter((p) => p !== "--allow-ffi");
    const out = await parley(
      [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data",
        join(dir, "data"),
        "--config",
        config,
      ],
      { permissions: withoutFfi },
    ).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.equal(
      stderr.trim(),
      `parley: crypto.nativeAes is "require" but this process may not use FFI: run it with --allow-ffi, or set crypto.nativeAes to "auto"`,
    );
    assert.doesNotMatch(new TextDecoder().decode(out.stdout), /server\.listening/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
