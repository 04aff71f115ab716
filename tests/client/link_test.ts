/** Link: the reconnecting connection under the terminal client. */

import assert from "node:assert/strict";
import { Link, MAX_SENDS_LOST, SendGivenUpError } from "../../src/client/link.ts";
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

Deno.test("Link gives a message up once the connection closed under it MAX_SENDS_LOST times", () =>
  withServer(async (t) => {
    await t.user("bob");
    const alice = await t.user("alice");
    const statuses: string[] = [];
    const link = new Link({ host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts }, {
      status: (text) => statuses.push(text),
      event: () => {},
    });
    link.open(alice);
    try {
      // Over the server's frame limit: the server closes the connection each time it arrives.
      const image = new Uint8Array(t.config.limits.maxFrameBytes + 1024);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        link.sendImage({ user: "bob" }, image).then(() => "sent", (e) => e),
        new Promise((r) => timer = setTimeout(() => r("still resending after 15 s"), 15_000)),
      ]);
      clearTimeout(timer);
      assert.ok(outcome instanceof SendGivenUpError, String(outcome));
      assert.match(outcome.message, /given up/);
      // The link itself carries on, and the image is not sent again.
      const receipt = await link.sendText({ user: "bob" }, "still connected");
      assert.equal(receipt.id.length, 16);
      assert.equal(
        statuses.filter((s) => /Reconnecting in/.test(s)).length,
        MAX_SENDS_LOST,
        statuses.join(" | "),
      );
    } finally {
      link.close();
    }
  }));
