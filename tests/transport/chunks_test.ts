/**
 * Sealed output starts small: a keepalive round seals one PING for every connection in one turn,
 * and each connection's first chunk was a 64 KiB buffer.
 */

import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { chunksMade, SMALL_CHUNK_BYTES } from "../../src/transport/buffer_pools.ts";
import { Channel } from "../../src/transport/channel.ts";
import { memoryPair } from "../../src/transport/memory.ts";

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function channel(): Channel {
  const [end] = memoryPair();
  const key = new Uint8Array(32).fill(7);
  return new Channel(end, { send: key, receive: key }, new FrameDecoder(1 << 20), {
    maxFrameBytes: 1 << 20,
    maxOutboundBytes: 1 << 24,
    maxDepth: 16,
  });
}

Deno.test("a turn of small frames on many connections takes small chunks, not 64 KiB ones", async () => {
  const channels = Array.from({ length: 600 }, channel);
  await turn();
  const before = { ...chunksMade };
  for (const c of channels) c.send(MsgType.PING, 0, null);
  await turn();
  assert.equal(chunksMade.big - before.big, 0, "no 64 KiB chunk for a PING");
  assert.ok(chunksMade.small - before.small <= channels.length);
  // A turn whose output is larger than a small chunk takes a big one, as before.
  channels[0].send(MsgType.PASS, 0, "x".repeat(SMALL_CHUNK_BYTES));
  await turn();
  for (const c of channels) c.close();
});
