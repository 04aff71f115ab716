/** ParleyClient over a transport it is given: no socket, a hand-driven server on a memory pair. */

import assert from "node:assert/strict";
import { ParleyClient } from "../../src/client/client.ts";
import { ed25519KeyPair, fingerprint } from "../../src/crypto/keys.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { Channel } from "../../src/transport/channel.ts";
import { acceptHandshake } from "../../src/transport/handshake_io.ts";
import { memoryPair } from "../../src/transport/memory.ts";

Deno.test("ParleyClient.connect() with dial: the handshake and requests run over the given transport", async () => {
  const [clientEnd, serverEnd] = memoryPair({ capacity: 4096 });
  const identity = ed25519KeyPair();
  const server = (async () => {
    const { keys, decoder } = await acceptHandshake(serverEnd, identity, 1 << 20);
    const channel = new Channel(serverEnd, keys, decoder, {
      maxFrameBytes: 1 << 20,
      maxOutboundBytes: 1 << 20,
      maxDepth: 16,
    });
    let pings = 0;
    await channel.receive(({ messages }) => {
      for (const m of messages) {
        if (m.type === MsgType.PING) channel.send(MsgType.PONG, m.id, m.body), pings++;
      }
    });
    channel.close();
    return pings;
  })();
  let dialled = 0;
  const client = await ParleyClient.connect({
    host: "simulated",
    port: 1,
    knownHosts: null,
    dial: () => (dialled++, Promise.resolve(clientEnd)),
  });
  assert.equal(dialled, 1);
  assert.equal(client.fingerprint, fingerprint(identity.publicKey));
  assert.ok(await client.ping() >= 0);
  assert.ok(await client.ping() >= 0);
  client.close();
  assert.equal(await server, 2);
});
