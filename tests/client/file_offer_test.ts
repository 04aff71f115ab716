/** sendFile() against a hand-driven server: an answer in the same frame as the offer's reply. */

import assert from "node:assert/strict";
import { ParleyClient } from "../../src/client/client.ts";
import { ParleyError } from "../../src/protocol/errors.ts";
import { decodeMessages, encodeMessages } from "../../src/protocol/message_codec.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { writeAll } from "../../src/transport/transport.ts";
import { acceptSealed } from "../helpers/raw.ts";

Deno.test("sendFile() hears a FILE_ANSWERED that comes in one frame with FILE_OFFERED", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const server = (async () => {
    const { conn, decoder, sealer, opener } = await acceptSealed(listener);
    const buf = new Uint8Array(4096);
    let offerId = -1;
    while (offerId < 0) {
      const frame = decoder.readFrame();
      if (!frame) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("The client went away");
        decoder.push(buf.subarray(0, n));
        continue;
      }
      const offer = decodeMessages(opener.open(frame)).messages
        .find((m) => m.type === MsgType.FILE_OFFER);
      if (offer) offerId = offer.id;
    }
    // The receiver answered at once: both reach the sender in the same frame.
    await writeAll(
      conn,
      sealer.seal(encodeMessages([
        {
          type: MsgType.FILE_OFFERED,
          id: offerId,
          body: { transfer_id: 7, chunk_bytes: 1024, window: 4 },
        },
        { type: MsgType.FILE_ANSWERED, id: 0, body: { transfer_id: 7, accept: false } },
      ])),
    );
    return conn;
  })();
  const client = await ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null });
  // An application reading every push, as the terminal client does.
  const pushes = (async () => {
    for await (const _ of client.events()) { /* shown to the user */ }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const outcome = await Promise.race([
      client.sendFile("bob", "notes.txt", new Uint8Array(10)).then(() => "sent", (e) => e),
      new Promise((r) => timer = setTimeout(() => r("no answer heard within 5 s"), 5000)),
    ]);
    assert.ok(outcome instanceof ParleyError, String(outcome));
    assert.equal(outcome.message, "bob declined the file");
  } finally {
    clearTimeout(timer);
    client.close();
    (await server).close();
    listener.close();
    await pushes;
  }
});
