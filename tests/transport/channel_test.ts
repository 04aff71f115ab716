/** Channel against a real loopback socket: what the peer gets when a send fails part-way. */

import assert from "node:assert/strict";
import { FrameOpener } from "../../src/crypto/cipher.ts";
import { decodeMessages } from "../../src/protocol/message_codec.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import type { Value } from "../../src/protocol/value.ts";
import { Channel } from "../../src/transport/channel.ts";

const SEND_KEY = new Uint8Array(32).fill(3);
const RECEIVE_KEY = new Uint8Array(32).fill(4);

Deno.test("a message that fails to encode leaves nothing behind; the messages around it arrive", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await listener.accept();
  listener.close();
  const channel = new Channel(
    server,
    { send: SEND_KEY, receive: RECEIVE_KEY },
    new FrameDecoder(1 << 20),
    { maxFrameBytes: 1 << 20, maxOutboundBytes: 1 << 24, maxDepth: 16 },
  );
  try {
    channel.send(1, 1, "before");
    // A dict whose second field cannot be encoded: its first field is already written by then.
    const bad = { fine: "x".repeat(100), broken: Symbol("no") } as unknown as Value;
    assert.throws(() => channel.send(1, 2, bad), TypeError);
    channel.send(1, 3, "after");
    await channel.flush();

    const decoder = new FrameDecoder(1 << 20);
    const opener = new FrameOpener(SEND_KEY);
    const buf = new Uint8Array(4096);
    let frame = decoder.readFrame();
    while (!frame) {
      const n = await client.read(buf);
      assert.ok(n !== null, "the channel closed the connection");
      decoder.push(buf.subarray(0, n));
      frame = decoder.readFrame();
    }
    const { messages, error } = decodeMessages(opener.open(frame));
    assert.equal(error, undefined);
    assert.deepEqual(messages.map((m) => [m.id, m.body]), [[1, "before"], [3, "after"]]);
  } finally {
    channel.close();
    client.close();
  }
});
