/** Link: the reconnecting connection under the terminal client. */

import assert from "node:assert/strict";
import { Link } from "../../src/client/link.ts";
import type { Message } from "../../src/protocol/message_codec.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { withServer } from "../helpers/server.ts";

Deno.test("Link reports a push its handler cannot handle and goes on with the next", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const statuses: string[] = [];
    const texts: string[] = [];
    let next!: () => void;
    const second = new Promise<void>((r) => next = r);
    const link = new Link({ host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts }, {
      status: (text) => statuses.push(text),
      event: (m: Message) => {
        if (m.type !== MsgType.PASS) return;
        const text = (m.body as { data: string }).data;
        if (text === "poison") return Promise.reject(new Error("cannot save this"));
        texts.push(text);
        next();
      },
    });
    link.open(bob);
    await alice.sendText({ user: "bob" }, "poison");
    await alice.sendText({ user: "bob" }, "fine");
    await second;
    assert.deepEqual(texts, ["fine"]);
    assert.deepEqual(statuses, ["Could not handle a PASS from the server: cannot save this"]);
    assert.ok(link.client, "the link is still up");
    link.close();
  }));
