import assert from "node:assert/strict";
import {
  headEnd,
  HeadError,
  listsToken,
  parseHead,
  WEB_MAX_HEAD_BYTES,
} from "../../src/server/web/http_head.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

function status(head: string): number {
  try {
    parseHead(bytes(head));
  } catch (e) {
    assert.ok(e instanceof HeadError);
    return e.status;
  }
  return 0;
}

Deno.test("parseHead() reads the request line and headers, by lower-case name", () => {
  const head = parseHead(bytes(
    "GET /app.js?v=1 HTTP/1.1\r\nHost: example.org\r\nAccept:  */* \r\n" +
      "Cache-Control: no-cache\r\ncache-control: max-age=0\r\n\r\n",
  ));
  assert.equal(head.method, "GET");
  assert.equal(head.path, "/app.js");
  assert.equal(head.minor, 1);
  assert.equal(head.headers.get("host"), "example.org");
  assert.equal(head.headers.get("accept"), "*/*");
  assert.equal(head.headers.get("cache-control"), "no-cache, max-age=0");
  assert.equal(parseHead(bytes("GET / HTTP/1.0\r\n\r\n")).minor, 0);
});

Deno.test("parseHead() refuses what could be read two ways: 400", () => {
  const bad = [
    "GET / HTTP/1.1\r\n\r\n", // no Host
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nOrigin: x\r\nOrigin: y\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",
    "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTCPCP/1.0\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n", // not complete
  ];
  for (const head of bad) assert.equal(status(head), 400, JSON.stringify(head));
  assert.equal(status("GET / HTTP/2\r\nHost: a\r\n\r\n"), 505);
});

Deno.test("parseHead() refuses a head over the byte or header limit: 431", () => {
  const long = `GET / HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(WEB_MAX_HEAD_BYTES)}\r\n\r\n`;
  assert.equal(status(long), 431);
  assert.equal(status(`GET / HTTP/1.1\r\nHost: a\r\n${"X: y\r\n".repeat(100)}\r\n`), 431);
  assert.equal(status(`GET / HTTP/1.1\r\nHost: a\r\n${"X: y\r\n".repeat(98)}\r\n`), 0);
});

Deno.test("headEnd() finds the blank line wherever a read boundary fell", () => {
  const text = bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\nrest");
  const end = text.length - 4;
  for (let filled = 0; filled <= text.length; filled++) {
    // As the reader calls it: from where the previous read ended, which had not found it.
    for (let from = 0; from <= Math.min(filled, end - 1); from++) {
      const found = headEnd(text, from, filled);
      assert.equal(found, filled >= end ? end : -1, `filled ${filled}, from ${from}`);
    }
  }
});

Deno.test("listsToken() finds a token in a comma-separated header, without case", () => {
  assert.ok(listsToken("keep-alive, Upgrade", "upgrade"));
  assert.ok(!listsToken("upgrade-insecure", "upgrade"));
  assert.ok(!listsToken(undefined, "upgrade"));
});
