/**
 * The client library answers the server's keepalive PING by itself, against a hand-driven
 * server: the server's tests of the keepalive drive their own PONGs, so that they can know when
 * the server has read them.
 */

import assert from "node:assert/strict";
import { ParleyClient } from "../../src/client/client.ts";
import { decodeMessages, encodeMessages, type Message } from "../../src/protocol/message_codec.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { writeAll } from "../../src/transport/transport.ts";
import { acceptSealed, readWithin } from "../helpers/raw.ts";

Deno.test("ParleyClient answers each server PING with a PONG of the same id and body", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const server = (async () => {
    const { conn, decoder, sealer, opener } = await acceptSealed(listener);
    const buf = new Uint8Array(4096);
    const heard: Message[] = [];
    const pings = [
      { type: MsgType.PING, id: 77, body: null },
      { type: MsgType.PING, id: 78, body: new Uint8Array([1, 2, 3]) },
    ];
    try {
      for (const ping of pings) {
        await writeAll(conn, sealer.seal(encodeMessages([ping])));
        while (heard.length < pings.indexOf(ping) + 1) {
          const frame = decoder.readFrame();
          if (frame) {
            heard.push(...decodeMessages(opener.open(frame)).messages);
            continue;
          }
          const n = await readWithin(conn, buf, 5000);
          if (n === null) throw new Error("The client went away");
          decoder.push(buf.subarray(0, n));
        }
      }
    } finally {
      conn.close();
    }
    return heard;
  })();
  const client = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null });
  try {
    const heard = await server;
    assert.deepEqual(heard, [
      { type: MsgType.PONG, id: 77, body: null },
      { type: MsgType.PONG, id: 78, body: new Uint8Array([1, 2, 3]) },
    ]);
  } finally {
    client.close();
    await client.closed;
    listener.close();
  }
});
