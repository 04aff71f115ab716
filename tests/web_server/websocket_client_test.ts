/** The WHATWG WebSocket Transport, against the real web port and against a bare Deno server. */

import assert from "node:assert/strict";
import { ConnectionGone } from "../../src/transport/transport.ts";
import { WebSocketTransport } from "../../src/transport/websocket_client.ts";

Deno.test("websocket_client.ts runs in a browser: no node: import, no Deno API", async () => {
  const source = await Deno.readTextFile(
    new URL("../../src/transport/websocket_client.ts", import.meta.url),
  );
  assert.doesNotMatch(source, /from "node:|import\("node:/);
  assert.doesNotMatch(source, /\bDeno\./);
});

/** A Deno WebSocket server (the test's own, not Parley's) running `onSocket` for each client. */
function echoServer(onSocket: (ws: WebSocket) => void) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    onSocket(socket);
    return response;
  });
  return { url: `ws://127.0.0.1:${server.addr.port}/`, server };
}

Deno.test("WebSocketTransport reads messages concatenated into any buffer size, then null after a clean close", async () => {
  const { url, server } = echoServer((ws) => {
    ws.onopen = () => {
      ws.send(new Uint8Array([1, 2, 3]));
      ws.send(new Uint8Array([4]));
      ws.send(new Uint8Array(0));
      ws.send(new Uint8Array([5, 6]));
      ws.close(1000);
    };
  });
  try {
    const t = await WebSocketTransport.connect(url);
    assert.deepEqual(t.peer, { hostname: "127.0.0.1", port: Number(new URL(url).port) });
    const got: number[] = [];
    const buf = new Uint8Array(2);
    for (let n = await t.read(buf); n !== null; n = await t.read(buf)) {
      got.push(...buf.subarray(0, n));
    }
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
    assert.equal(t.closeCode, 1000);
    await assert.rejects(() => t.write(new Uint8Array(1)), ConnectionGone);
    t.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("WebSocketTransport writes binary messages, fails reads once closed, and bounds its queue", async () => {
  let received: Uint8Array[] = [];
  let serverSide: WebSocket | null = null;
  const { url, server } = echoServer((ws) => {
    serverSide = ws;
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => received.push(new Uint8Array(e.data));
  });
  try {
    const t = await WebSocketTransport.connect(url);
    assert.equal(await t.write(new Uint8Array([9, 8, 7])), 3);
    for (let i = 0; i < 100 && received.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(received.map((m) => [...m]), [[9, 8, 7]]);
    const pending = t.read(new Uint8Array(4));
    t.close();
    await assert.rejects(pending, ConnectionGone);
    received = [];

    // A reader that falls behind by more than the bound is cut off.
    const small = await WebSocketTransport.connect(url, { maxQueuedBytes: 10 });
    for (let i = 0; i < 100 && serverSide === null; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    (serverSide as unknown as WebSocket).send(new Uint8Array(8));
    (serverSide as unknown as WebSocket).send(new Uint8Array(8));
    await assert.rejects(async () => {
      while (true) if (await small.read(new Uint8Array(1)) === null) return;
    }, /More than 10 received bytes/);
    small.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("WebSocketTransport.connect() rejects a URL that is not ws: or wss:, and a refused upgrade", async () => {
  await assert.rejects(() => WebSocketTransport.connect("http://127.0.0.1:1/"), TypeError);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const refuse = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    await conn.write(
      new TextEncoder().encode("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"),
    );
    conn.close();
  })();
  await assert.rejects(
    () => WebSocketTransport.connect(`ws://127.0.0.1:${port}/ws`),
    ConnectionGone,
  );
  await refuse;
  listener.close();
});
