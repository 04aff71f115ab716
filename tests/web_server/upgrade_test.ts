/** The WebSocket upgrade on /ws, and the framing rules the server holds a client to. */

import assert from "node:assert/strict";
import {
  encodeClientHello,
  isServerHello,
  SERVER_HELLO_BYTES,
  SERVER_PREFIX_BYTES,
} from "../../src/crypto/handshake.ts";
import { x25519KeyPair } from "../../src/crypto/keys.ts";
import {
  concat,
  exchange,
  metric,
  RawSocket,
  upgradeHead,
  WITH_METRICS,
  withWebServer,
} from "./web_helpers.ts";

const BINARY = 0x2;
const TEXT = 0x1;
const CONTINUATION = 0x0;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

Deno.test("the upgrade answers 101 with RFC 6455's accept key for a page of the same origin", () =>
  withWebServer(async (_t, web) => {
    const { socket, head } = await RawSocket.open(Number(web.port));
    try {
      assert.equal(socket.status, 101, head);
      // RFC 6455 1.3's example key and answer.
      assert.match(head, /\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
      assert.match(head, /\r\nupgrade: websocket\r\n/i);
      assert.doesNotMatch(head, /set-cookie|sec-websocket-protocol/i);
    } finally {
      socket.close();
    }
  }));

Deno.test("the upgrade refuses a foreign, missing or other-scheme Origin with 403, and counts it", () =>
  withWebServer(async (t, web) => {
    const port = Number(web.port);
    const origins = [
      "http://evil.example",
      null,
      `https://127.0.0.1:${port}`,
      `http://127.0.0.1:${port + 1}`,
      "null",
    ];
    for (const origin of origins) {
      const answer = await exchange(port, upgradeHead(port, { Origin: origin }));
      assert.match(answer, /^HTTP\/1\.1 403 /, `Origin ${origin}`);
    }
    assert.equal(
      await metric(t, 'parley_web_upgrades_refused_total{reason="origin"}'),
      origins.length,
    );
    assert.equal(await metric(t, "parley_web_upgrades_total"), 0);
    // Host names compare without case, as browsers send them lower-case.
    const { socket } = await RawSocket.open(port, {
      Host: `LOCALHOST:${port}`,
      Origin: `http://localhost:${port}`,
    });
    assert.equal(socket.status, 101);
    socket.close();
  }, WITH_METRICS));

Deno.test("the upgrade takes an Origin listed in web.origins (a reverse proxy's public name)", () =>
  withWebServer(async (_t, web) => {
    const { socket } = await RawSocket.open(Number(web.port), {
      Host: "chat.example.org",
      Origin: "https://chat.example.org",
    });
    assert.equal(socket.status, 101);
    socket.close();
  }, { web: { origins: ["https://chat.example.org"] } }));

Deno.test("the upgrade refuses another WebSocket version (426), no Upgrade (426) and a bad key (400)", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const version = await exchange(port, upgradeHead(port, { "Sec-WebSocket-Version": "8" }));
    assert.match(version, /^HTTP\/1\.1 426 /);
    assert.match(version, /\r\nsec-websocket-version: 13\r\n/);
    assert.match(await exchange(port, upgradeHead(port, { Upgrade: null })), /^HTTP\/1\.1 426 /);
    assert.match(
      await exchange(port, upgradeHead(port, { "Sec-WebSocket-Key": "short" })),
      /^HTTP\/1\.1 400 /,
    );
  }));

Deno.test("an upgrade with a body is refused with 400, not taken as its first frames", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    // After a 101 the body's bytes would be read as WebSocket frames the client never framed.
    const length = await exchange(
      port,
      upgradeHead(port, { "Content-Length": "4" }) + "\x82\x80ab",
    );
    assert.match(length, /^HTTP\/1\.1 400 /);
    assert.match(length, /carries no body/);
    const chunked = await exchange(
      port,
      upgradeHead(port, { "Transfer-Encoding": "chunked" }) + "0\r\n\r\n",
    );
    assert.match(chunked, /^HTTP\/1\.1 400 /);
  }));

Deno.test("a text message is refused with Close 1003, then the connection ends", () =>
  withWebServer(async (_t, web) => {
    const { socket } = await RawSocket.open(Number(web.port));
    await socket.send(TEXT, new TextEncoder().encode("hello"));
    assert.equal(await socket.closeCode(), 1003);
    assert.equal(await socket.frame(), null);
    socket.close();
  }));

Deno.test("an unmasked client frame, a reserved bit and a stray continuation get Close 1002", () =>
  withWebServer(async (_t, web) => {
    const port = Number(web.port);
    const unmasked = await RawSocket.open(port);
    await unmasked.socket.send(BINARY, new Uint8Array([1, 2, 3]), { mask: false });
    assert.equal(await unmasked.socket.closeCode(), 1002);
    unmasked.socket.close();
    const stray = await RawSocket.open(port);
    await stray.socket.send(CONTINUATION, new Uint8Array([1]));
    assert.equal(await stray.socket.closeCode(), 1002);
    stray.socket.close();
    const rsv = await RawSocket.open(port);
    await rsv.socket.send(BINARY | 0x40, new Uint8Array([1]));
    assert.equal(await rsv.socket.closeCode(), 1002);
    rsv.socket.close();
  }));

Deno.test("a message over the size limit is refused with Close 1009 before its bytes arrive", () =>
  withWebServer(async (_t, web) => {
    const { socket } = await RawSocket.open(Number(web.port));
    // A header announcing 1 GiB, masked, and no payload.
    const head = new Uint8Array(14);
    head[0] = 0x80 | BINARY;
    head[1] = 0x80 | 127;
    new DataView(head.buffer).setBigUint64(2, 1n << 30n);
    await socket.conn.write(head);
    assert.equal(await socket.closeCode(), 1009);
    socket.close();
  }));

Deno.test("a ping gets its pong, and the chat handshake crosses fragments in any split", () =>
  withWebServer(async (_t, web) => {
    const { socket } = await RawSocket.open(Number(web.port));
    try {
      await socket.send(PING, new Uint8Array([7, 8, 9]));
      const pong = await socket.frame();
      assert.equal(pong?.opcode, PONG);
      assert.deepEqual([...pong!.payload], [7, 8, 9]);
      const hello = encodeClientHello(x25519KeyPair().publicKey);
      // One message in three fragments with a ping between them, then nothing more: the
      // server must have read the hello from the fragments' payload, concatenated.
      await socket.send(BINARY, hello.subarray(0, 1), { fin: false });
      await socket.send(CONTINUATION, hello.subarray(1, 10), { fin: false });
      await socket.send(PING, new Uint8Array(0));
      await socket.send(CONTINUATION, hello.subarray(10), { fin: true });
      const received: Uint8Array[] = [];
      let length = 0;
      while (length < SERVER_HELLO_BYTES) {
        const f = await socket.frame();
        assert.ok(f, "the connection ended before the server's hello");
        if (f.opcode === PONG) continue;
        assert.equal(f.opcode, BINARY);
        received.push(f.payload);
        length += f.payload.length;
      }
      const serverHello = concat(received);
      assert.equal(serverHello.length, SERVER_HELLO_BYTES);
      assert.ok(isServerHello(serverHello.subarray(0, SERVER_PREFIX_BYTES)));
    } finally {
      socket.close();
    }
  }));

Deno.test("a client's Close is answered with a Close, and the server then ends the connection", () =>
  withWebServer(async (_t, web) => {
    const { socket } = await RawSocket.open(Number(web.port));
    await socket.send(CLOSE, new Uint8Array([0x03, 0xe8])); // 1000
    assert.equal(await socket.closeCode(), 1000);
    assert.equal(await socket.frame(), null);
    socket.close();
  }));
