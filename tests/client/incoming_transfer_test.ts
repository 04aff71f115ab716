/** IncomingTransfer, the receiving side of a file, driven by hand. */

import assert from "node:assert/strict";
import { type FileSink, IncomingTransfer } from "../../src/client/files.ts";
import type { Hasher } from "../../src/client/platform.ts";
import { ParleyError } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";

Deno.test("IncomingTransfer: a hasher that fails cancels the transfer, not the connection", async () => {
  // The browser's hasher keeps the whole file; past what the page may allocate, update throws.
  // data() runs in the channel's receive callback, where a throw ends the whole connection.
  const sent: { type: number; body: Value }[] = [];
  let updates = 0;
  const hasher: Hasher = {
    update() {
      if (++updates === 2) throw new RangeError("Array buffer allocation failed");
    },
    digest: () => Promise.resolve(new Uint8Array(32)),
  };
  const written: Uint8Array[] = [];
  const sink: FileSink = { write: (d) => Promise.resolve(void written.push(d)) };
  const link = { notify: (type: number, body: Value) => void sent.push({ type, body }) };
  const t = new IncomingTransfer(link, hasher, 7, 30, new Uint8Array(32), sink);
  t.start();
  t.data(0, new Uint8Array(10));
  t.data(10, new Uint8Array(10)); // must not throw into the caller
  await assert.rejects(t.done, ParleyError);
  const cancel = sent.find((m) => m.type === MsgType.FILE_CANCEL);
  assert.ok(cancel, "the sender hears the transfer is cancelled");
  assert.equal((cancel.body as { transfer_id: number }).transfer_id, 7);
  assert.ok(
    !sent.some((m) =>
      m.type === MsgType.FILE_ACK && (m.body as { received: number }).received > 10
    ),
    "nothing past the hasher's failure is acknowledged",
  );
});
