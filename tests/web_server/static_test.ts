/** The web port's files: served from the asset table with the security headers, nothing else. */

import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { MemoryAssets } from "../../src/server/web/assets.ts";
import {
  acceptsGzip,
  ALTERNATES_PATH,
  CONTENT_SECURITY_POLICY,
  contentSecurityPolicy,
} from "../../src/server/web/web_listener.ts";
import { exchange, get, PLACEHOLDER_FILES, withWebServer } from "./web_helpers.ts";

/** Status, lower-case headers and body of a raw answer. */
function parse(answer: string) {
  const end = answer.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = answer.slice(0, end).split("\r\n");
  const headers = new Map<string, string>();
  for (const l of lines) {
    const colon = l.indexOf(":");
    const name = l.slice(0, colon).toLowerCase();
    assert.ok(!headers.has(name), `the header ${name} came twice`);
    headers.set(name, l.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body: answer.slice(end + 4) };
}

function assertSecurityHeaders(headers: Map<string, string>): void {
  assert.equal(headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
  assert.equal(headers.get("x-content-type-options"), "nosniff");
  assert.equal(headers.get("referrer-policy"), "no-referrer");
  assert.ok(!headers.has("set-cookie"), "a cookie was set");
}

Deno.test("the web port serves the client's files with a strict CSP, nosniff, no referrer, no cookie", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const cases: [string, string, string][] = [
      ["/", PLACEHOLDER_FILES["/index.html"], "text/html; charset=utf-8"],
      ["/index.html", PLACEHOLDER_FILES["/index.html"], "text/html; charset=utf-8"],
      ["/app.js", PLACEHOLDER_FILES["/app.js"], "text/javascript; charset=utf-8"],
      ["/style.css?v=2", PLACEHOLDER_FILES["/style.css"], "text/css; charset=utf-8"],
    ];
    for (const [path, content, type] of cases) {
      const res = parse(await exchange(port, get(port, path)));
      assert.equal(res.status, 200, path);
      assert.equal(res.body, content, path);
      assert.equal(res.headers.get("content-type"), type, path);
      assert.equal(
        res.headers.get("content-length"),
        String(new TextEncoder().encode(content).length),
      );
      assert.equal(res.headers.get("cache-control"), "no-cache");
      assertSecurityHeaders(res.headers);
    }
    // The same file through fetch (a real HTTP client, keep-alive): the same bytes.
    const viaFetch = await fetch(new URL("/app.js", web));
    assert.equal(await viaFetch.text(), PLACEHOLDER_FILES["/app.js"]);
    assert.equal(viaFetch.headers.get("set-cookie"), null);
  }));

Deno.test("the web port answers HEAD without a body, 304 for a known ETag, 404 and 405 otherwise", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const head = parse(await exchange(port, get(port, "/app.js", [], "HEAD")));
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.equal(head.headers.get("content-length"), String(PLACEHOLDER_FILES["/app.js"].length));
    const etag = head.headers.get("etag")!;
    assert.match(etag, /^"[A-Za-z0-9_-]{22}"$/);
    const again = parse(await exchange(port, get(port, "/app.js", [`If-None-Match: ${etag}`])));
    assert.equal(again.status, 304);
    assert.equal(again.body, "");
    for (const path of ["/nothing", "/../config.json", "/index.html/", "/ws.js"]) {
      const res = parse(await exchange(port, get(port, path)));
      assert.equal(res.status, 404, path);
      assertSecurityHeaders(res.headers);
    }
    const post = parse(await exchange(port, get(port, "/", ["Content-Length: 0"], "POST")));
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.equal(parse(await exchange(port, "GET / HTTP/1.1\r\n\r\n")).status, 400, "no Host");
    assert.equal(
      parse(await exchange(port, "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n")).status,
      400,
    );
    assert.equal(parse(await exchange(port, "GET / HTTP/2.0\r\nHost: x\r\n\r\n")).status, 505);
  }));

Deno.test("the web port keeps a connection for several requests, in order", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const one = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
    // Pipelined: three heads in one write, the last asking to close.
    await conn.write(new TextEncoder().encode(
      one("/app.js") + one("/style.css") +
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    ));
    const { readAll } = await import("./web_helpers.ts");
    const text = await readAll(conn);
    conn.close();
    const bodies = text.split("HTTP/1.1 200 OK").slice(1);
    assert.equal(bodies.length, 3);
    assert.ok(bodies[0].endsWith(PLACEHOLDER_FILES["/app.js"]));
    assert.ok(bodies[1].endsWith(PLACEHOLDER_FILES["/style.css"]));
    assert.ok(bodies[2].includes("connection: close"));
  }));

Deno.test("the web port without the client's build answers 503 saying to run deno task web:build", () =>
  withWebServer(
    async (_t, web) => {
      const port = Number(web.port);
      for (const path of ["/", "/app.js"]) {
        const res = parse(await exchange(port, get(port, path)));
        assert.equal(res.status, 503, path);
        assert.match(res.body, /deno task web:build/);
      }
      assert.equal(parse(await exchange(port, get(port, "/style.css"))).status, 200);
    },
    {},
    { webAssets: MemoryAssets.of({ "/style.css": "body {}\n" }) },
  ));

Deno.test("HEAD of a missing file has no body either, so a kept-alive connection stays in step", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(
      `HEAD /nothing HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n` +
        `GET /app.js HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    ));
    const { readAll } = await import("./web_helpers.ts");
    const text = await readAll(conn);
    conn.close();
    const [first, second] = text.split(/(?=HTTP\/1\.1 )/);
    assert.match(first, /^HTTP\/1\.1 404 [^]*\r\n\r\n$/);
    assert.match(second, /^HTTP\/1\.1 200 /);
    assert.ok(second.endsWith(PLACEHOLDER_FILES["/app.js"]));
  }));

/** A whole answer's head (as text) and body (as bytes) from a raw exchange. */
async function rawExchange(port: number, request: string) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const bytes = new Uint8Array(await new Response(conn.readable).arrayBuffer());
    const end = bytes.findIndex((_, i) =>
      bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10
    );
    const { status, headers } = parse(new TextDecoder().decode(bytes.subarray(0, end + 4)));
    return { status, headers, body: bytes.subarray(end + 4) };
  } catch (e) {
    conn.close();
    throw e;
  }
}

Deno.test("the web port sends text files gzipped to a client that takes gzip, with their own ETag", async () => {
  const script = "console.log('a line the page runs');\n".repeat(400);
  const assets = MemoryAssets.of({ ...PLACEHOLDER_FILES, "/app.js": script });
  await withWebServer(
    async (_t, web) => {
      const port = Number(web.port);
      const zipped = await rawExchange(port, get(port, "/app.js", ["Accept-Encoding: br, gzip"]));
      assert.equal(zipped.status, 200);
      assert.equal(zipped.headers.get("content-encoding"), "gzip");
      assert.equal(zipped.headers.get("vary"), "accept-encoding");
      assert.equal(zipped.headers.get("content-length"), String(zipped.body.length));
      assert.ok(zipped.body.length < script.length / 10, `${zipped.body.length} bytes`);
      assert.equal(new TextDecoder().decode(gunzipSync(zipped.body)), script);
      assertSecurityHeaders(zipped.headers);
      // Without gzip (or refusing it), the file as it is, under another ETag.
      for (const extra of [[], ["Accept-Encoding: gzip;q=0, identity"]]) {
        const plain = await rawExchange(port, get(port, "/app.js", extra));
        assert.equal(plain.headers.get("content-encoding"), undefined, extra.join());
        assert.equal(plain.headers.get("vary"), "accept-encoding");
        assert.equal(new TextDecoder().decode(plain.body), script);
        assert.notEqual(plain.headers.get("etag"), zipped.headers.get("etag"));
      }
      // A cached gzip copy revalidates as such.
      const etag = zipped.headers.get("etag")!;
      const again = await rawExchange(
        port,
        get(port, "/app.js", ["Accept-Encoding: gzip", `If-None-Match: ${etag}`]),
      );
      assert.equal(again.status, 304);
    },
    {},
    { webAssets: assets },
  );
});

Deno.test("Accept-Encoding is read by its tokens and q values", () => {
  assert.ok(acceptsGzip("gzip"));
  assert.ok(acceptsGzip("deflate, GZIP;q=0.5"));
  assert.ok(acceptsGzip("*"));
  assert.ok(!acceptsGzip(undefined));
  assert.ok(!acceptsGzip("br, deflate"));
  assert.ok(!acceptsGzip("gzip;q=0"));
  assert.ok(!acceptsGzip("x-gzip2"));
});

Deno.test("the web port lists web.alternates at /alternates.json and lets the page connect to them", async () => {
  const nodes = ["wss://node2.example.org/ws", "ws://127.0.0.1:8081/ws"];
  await withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const res = parse(await exchange(port, get(port, ALTERNATES_PATH)));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(res.body), { alternates: nodes });
    // The page may open those WebSockets (and no others): they are in connect-src.
    const csp = res.headers.get("content-security-policy")!;
    assert.equal(csp, contentSecurityPolicy(nodes));
    assert.match(
      csp,
      /connect-src 'self' wss:\/\/node2\.example\.org\/ws ws:\/\/127\.0\.0\.1:8081\/ws;/,
    );
    const page = parse(await exchange(port, get(port, "/")));
    assert.equal(page.headers.get("content-security-policy"), csp);
  }, { web: { alternates: nodes } });
  // None configured: an empty list, and the CSP as strict as ever.
  await withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const res = parse(await exchange(port, get(port, ALTERNATES_PATH)));
    assert.deepEqual(JSON.parse(res.body), { alternates: [] });
    assertSecurityHeaders(res.headers);
  });
});
