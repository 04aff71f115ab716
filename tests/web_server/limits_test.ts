/** The web port under abuse: slow and oversize heads, the connection caps, abrupt peers. */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { encodeClientHello } from "../../src/crypto/handshake.ts";
import { x25519KeyPair } from "../../src/crypto/keys.ts";
import { WEB_MAX_HEAD_BYTES } from "../../src/server/web/http_head.ts";
import { passes } from "../helpers/content.ts";
import {
  exchange,
  metric,
  PLACEHOLDER_FILES,
  RawSocket,
  readAll,
  webUser,
  WITH_METRICS,
  withWebServer,
} from "./web_helpers.ts";

const encoder = new TextEncoder();

/** Polls `check` (up to 5 s of the process's time): the server acts on its own schedule. */
async function eventually(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never happened: ${what}`);
}

Deno.test("a head not finished by web.headTimeoutMs gets 408 and is closed; one in time is served", () => {
  const clock = new ManualClock();
  return withWebServer(
    async (t, web) => {
      const port = Number(web.port);
      const timeout = t.config.web.headTimeoutMs;
      const before = clock.pending;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(encoder.encode(`GET /app.js HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`));
        await eventually("the head's deadline is set", () => clock.pending > before);
        clock.advance(timeout - 1);
        // Finished just in time: served, and the connection kept for the next request.
        await conn.write(encoder.encode("\r\n"));
        const buf = new Uint8Array(4096);
        let answer = "";
        while (!answer.endsWith(PLACEHOLDER_FILES["/app.js"])) {
          const n = await conn.read(buf);
          assert.ok(n !== null, "closed before the answer");
          answer += new TextDecoder().decode(buf.subarray(0, n));
        }
        assert.match(answer, /^HTTP\/1\.1 200 /);
        // The next head is slow: the deadline (set anew for it) passes.
        await conn.write(encoder.encode("GET / HT"));
        clock.advance(timeout);
        const rest = await readAll(conn);
        assert.match(rest, /^HTTP\/1\.1 408 /);
        assert.match(rest, /connection: close/);
      } finally {
        conn.close();
      }
    },
    {},
    { clock },
  );
});

Deno.test("a head whose lines end in a bare LF gets 400 at once, not 408 at its deadline", () =>
  // The clock stands still: an answer can only come from the bytes, not from the deadline.
  withWebServer(
    async (_t, web) => {
      const port = Number(web.port);
      for (const head of [`GET / HTTP/1.1\nHost: 127.0.0.1:${port}\n\n`, "GET / HTTP/1.1\n"]) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(encoder.encode(head));
          const answer = await readAll(conn, 2000);
          assert.match(answer, /^HTTP\/1\.1 400 /, JSON.stringify(head));
          assert.match(answer, /without CRLF/);
        } finally {
          conn.close();
        }
      }
    },
    {},
    { clock: new ManualClock() },
  ));

Deno.test("a head over the size limit gets 431 and is closed", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(WEB_MAX_HEAD_BYTES)}\r\n\r\n`;
    assert.match(await exchange(port, big), /^HTTP\/1\.1 431 /);
    // Many small headers are refused the same way, below the byte limit.
    const many = `GET / HTTP/1.1\r\nHost: x\r\n${"X-A: b\r\n".repeat(200)}\r\n`;
    assert.match(await exchange(port, many), /^HTTP\/1\.1 431 /);
    // And the port serves on.
    assert.match(
      await exchange(port, `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
      /^HTTP\/1\.1 200 /,
    );
  }));

/** Whether the chat port takes a connection: it is closed at once, unanswered, over a cap. */
async function chatRefused(port: number): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // A refused connection is closed before any byte: the read ends (or resets) at once. An
    // admitted one waits for the client's hello, so the read is still pending after a moment.
    const read = conn.read(new Uint8Array(16)).then(() => true, () => true);
    const pending = new Promise<boolean>((r) => setTimeout(() => r(false), 300));
    return await Promise.race([read, pending]);
  } finally {
    conn.close();
  }
}

Deno.test("the per-address cap counts WebSocket and plain web connections with the chat port's", () =>
  withWebServer(async (t, web) => {
    const port = Number(web.port);
    const first = await webUser(t, web, "wendy");
    const idle = await Deno.connect({ hostname: "127.0.0.1", port }); // a page load, say
    try {
      // Two of two taken: the chat port refuses, and so does the web port.
      await eventually("the chat port refuses a third", () => chatRefused(t.port));
      const webConn = await Deno.connect({ hostname: "127.0.0.1", port });
      await webConn.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).catch(() => 0);
      assert.equal(await readAll(webConn), "", "the web port answered over the cap");
      webConn.close();
    } finally {
      idle.close();
    }
    // The plain connection's place is given back when it closes.
    await eventually("the chat port admits again", async () => !await chatRefused(t.port));
    first.close();
  }, { limits: { maxConnectionsPerIp: 2 } }));

Deno.test("WebSocket peers that vanish mid-frame or mid-handshake leave the server serving", () =>
  withWebServer(async (t, web) => {
    const port = Number(web.port);
    // Gone after half a frame header.
    const a = await RawSocket.open(port);
    await a.socket.conn.write(new Uint8Array([0x82]));
    a.socket.close();
    // Gone in the middle of a frame's payload, inside the chat handshake.
    const b = await RawSocket.open(port);
    const hello = encodeClientHello(x25519KeyPair().publicKey);
    const frame = (await import("./web_helpers.ts")).clientFrame(0x2, hello);
    await b.socket.conn.write(frame.subarray(0, frame.length - 5));
    b.socket.close();
    // Gone during the upgrade request.
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(encoder.encode("GET /ws HTTP/1.1\r\nHost: x\r\nUpg"));
    c.close();
    // A logged-in browser user whose socket is cut without a Close.
    const gone = await webUser(t, web, "gone");
    gone.close();
    // Every connection is released, and a new browser user chats as before.
    await eventually(
      "every connection released",
      async () => await metric(t, "parley_connections") === 0,
    );
    const wendy = await webUser(t, web, "wendy");
    const tom = await t.user("tom");
    await tom.sendText({ user: "wendy" }, "still here");
    assert.equal((await passes(wendy, 1))[0].data, "still here");
  }, WITH_METRICS));
