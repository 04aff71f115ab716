/** The web port over HTTPS with a certificate made here by openssl, and a client that trusts it. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { passes } from "../helpers/content.ts";
import { withWebServer } from "./web_helpers.ts";

/** Runs openssl; fails the test with its output if it fails. */
async function openssl(cwd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** A CA, and a certificate for 127.0.0.1 signed by it: ca.pem, cert.pem, key.pem in `dir`. */
async function makeCertificates(dir: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "ca-key.pem",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Parley test CA",
  ]); // deno-fmt-ignore
  await openssl(dir, [
    "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=127.0.0.1",
  ]); // deno-fmt-ignore
  await Deno.writeTextFile(
    join(dir, "ext.cnf"),
    "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "cert.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca-key.pem",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ]); // deno-fmt-ignore
}

Deno.test("the web port serves HTTPS with web.tls, and a WebSocket client that trusts the CA chats over it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-tls-" });
  try {
    await makeCertificates(dir);
    const ca = await Deno.readTextFile(join(dir, "ca.pem"));
    const tls = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
    await withWebServer(async (t, web) => {
      assert.equal(web.protocol, "https:");
      const port = Number(web.port);
      // HTTPS at the TLS level: the page with its headers.
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
      await conn.write(
        new TextEncoder().encode(
          `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
        ),
      );
      const { readAll } = await import("./web_helpers.ts");
      const page = await readAll(conn);
      conn.close();
      assert.match(page, /^HTTP\/1\.1 200 /);
      assert.match(page, /content-security-policy: default-src 'none'/);
      // A whole chat from a child process whose Deno trusts the test's CA.
      const tom = await t.user("tom");
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          "--cert",
          join(dir, "ca.pem"),
          new URL("./tls_client_child.ts", import.meta.url).pathname,
          web.origin,
          "wendy",
          "tom",
        ],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.equal(new TextDecoder().decode(out.stdout).trim(), t.server.fingerprint);
      assert.equal((await passes(tom, 1))[0].data, "over TLS from wendy");
    }, { web: { tls } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a TLS handshake never finished is closed at the head's deadline, socket and all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-tls-" });
  try {
    await makeCertificates(dir);
    const ca = await Deno.readTextFile(join(dir, "ca.pem"));
    const tls = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
    await withWebServer(async (_t, web) => {
      const port = Number(web.port);
      const { readAll } = await import("./web_helpers.ts");
      // Silent, and a ClientHello's first bytes: neither may keep its socket past the deadline
      // (a socket kept open after the server gave it up is a descriptor an attacker holds).
      const silent = await Deno.connect({ hostname: "127.0.0.1", port });
      const partial = await Deno.connect({ hostname: "127.0.0.1", port });
      await partial.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      const started = Date.now();
      for (const conn of [silent, partial]) {
        await readAll(conn, 5000); // Closes the connection itself if the server does not.
        assert.ok(Date.now() - started < 4000, "the socket was still open after 4 s");
      }
      // HTTPS still works, and so does plain HTTP's refusal.
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
      await conn.write(
        new TextEncoder().encode(
          `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
        ),
      );
      const page = await readAll(conn);
      conn.close();
      assert.match(page, /^HTTP\/1\.1 200 /);
      assert.equal(web.protocol, "https:");
    }, { web: { tls, headTimeoutMs: 500 } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("over TLS, a connection past the per-address cap is closed at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-tls-" });
  try {
    await makeCertificates(dir);
    const tls = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
    await withWebServer(async (_t, web) => {
      const port = Number(web.port);
      const { readAll } = await import("./web_helpers.ts");
      const held = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await new Promise((r) => setTimeout(r, 100)); // Admitted before the next one comes.
        const started = Date.now();
        const refused = await Deno.connect({ hostname: "127.0.0.1", port });
        await readAll(refused, 5000);
        refused.close();
        // Not after the relay's grace for a last answer: nothing was sent, nothing to wait for.
        assert.ok(Date.now() - started < 800, `closed after ${Date.now() - started} ms`);
      } finally {
        held.close();
      }
    }, { web: { tls }, limits: { maxConnectionsPerIp: 1 } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
