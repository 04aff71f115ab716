/**
 * Floods against a real server: a burst gets its answers and the notice before the close, a
 * sustained flood is cut off, and what a session can make the server hold is bounded.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import type { Message } from "../../src/protocol/message_codec.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { newMessageId } from "../../src/client/client.ts";
import { MAX_HELD_REPLIES } from "../../src/server/session.ts";
import { routedKv } from "../helpers/kv.ts";
import { RawClient, receiveAll } from "../helpers/raw.ts";
import { TestServer, withServer } from "../helpers/server.ts";

const NOTICE = /Disconnected for sending too many requests/;

function isNotice(m: Message): boolean {
  return m.type === MsgType.GENERAL_ERROR && m.id === 0 &&
    NOTICE.test((m.body as { message: string }).message);
}

function isRefusal(m: Message): boolean {
  return m.type === MsgType.GENERAL_ERROR && m.id !== 0 &&
    (m.body as { code: number }).code === ErrorCode.RATE_LIMITED;
}

/** Checks the end of a flooded connection: answers, one refusal, the notice, nothing after. */
function assertFloodEnding(got: Message[]): void {
  const at = got.findIndex(isNotice);
  assert.ok(at >= 0, `no notice among ${got.length} messages`);
  assert.equal(at, got.length - 1, "nothing after the notice");
  assert.ok(isRefusal(got[at - 1]), "the request that crossed the limit is answered first");
  const ids = got.slice(0, at).map((m) => m.id);
  assert.deepEqual(ids, ids.toSorted((a, b) => a - b), "answers in request order");
  assert.equal(new Set(ids).size, ids.length, "one answer per request");
}

Deno.test("a burst of 10,000 requests gets its answers and the notice, not a reset", () =>
  withServer(async (t) => {
    const raw = await RawClient.loggedIn(t.port, "alice");
    // One frame per request, all in one write: most of it is still unread when the server
    // decides to close.
    const frames = [];
    for (let id = 1; id <= 10_000; id++) {
      frames.push(raw.frame([{ type: MsgType.PING, id, body: null }]));
    }
    await raw.send(concat(frames));
    const got = await receiveAll(raw);
    raw.close();
    assertFloodEnding(got);
    const pongs = got.filter((m) => m.type === MsgType.PONG).length;
    assert.ok(pongs >= 500 && pongs < 600, `${pongs} PONGs: the burst, and a little more`);
    const other = await t.user("bob");
    assert.ok(await other.ping() >= 0);
  }, { limits: { requestRate: 100, requestBurst: 500 } }));

Deno.test("a sustained flood at five times the rate is disconnected, though tokens keep refilling", () => {
  const clock = new ManualClock();
  return withServer(
    async (t) => {
      const raw = await RawClient.loggedIn(t.port, "alice");
      const got: Message[] = [];
      let open = true;
      let id = 1;
      // 5 requests every 10 ms of the server's clock against 100 a second: each refill lets one
      // through. Each batch is answered before the clock moves on.
      for (let batch = 0; batch < 1000 && open && !got.some(isNotice); batch++) {
        const waiting = new Set<number>();
        const requests = [];
        for (let i = 0; i < 5; i++, id++) {
          waiting.add(id);
          requests.push({ type: MsgType.PING, id, body: null });
        }
        await raw.send(raw.frame(requests));
        while (waiting.size > 0 && !got.some(isNotice)) {
          const messages = await raw.receive();
          if (messages === null) {
            open = false;
            break;
          }
          for (const m of messages) waiting.delete(m.id);
          got.push(...messages);
        }
        clock.advance(10);
      }
      if (open) got.push(...await receiveAll(raw, 5000));
      raw.close();
      assertFloodEnding(got);
      const pongs = got.filter((m) => m.type === MsgType.PONG).length;
      assert.ok(pongs > 20, `${pongs} PONGs: the burst of 20, then one per refill`);
    },
    { limits: { requestRate: 100, requestBurst: 20 } },
    { clock },
  );
});

/** The count of requests the server answered with `code` so far, from /metrics. */
async function failures(t: TestServer, code: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.server.http!.port}/metrics`)).text();
  const line = text.split("\n").find((l) =>
    l.startsWith(`parley_request_failures_total{code="${code}"}`)
  );
  return Number(line!.split(" ").at(-1));
}

Deno.test("replies held behind a slow durable write are bounded: the server stops reading, others go on", async () => {
  // Inbox commits wait until the test opens the gate: SENT to an offline user is held.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const original = Object.getOwnPropertyDescriptor(Deno, "openKv")!;
  const openKv = Deno.openKv;
  Object.defineProperty(Deno, "openKv", {
    configurable: true,
    value: async (path?: string) =>
      routedKv(await openKv(path), (key) => key[0] === "inbox", (commit) => gate.then(commit)),
  });
  let t: TestServer;
  try {
    t = await TestServer.start({ http: { enabled: true, port: 0 } });
  } finally {
    Object.defineProperty(Deno, "openKv", original);
  }
  try {
    (await t.user("bob")).close();
    // Logged in before the writes stall: a login's token goes through the same committer.
    const bystander = await t.user("carol");
    const raw = await RawClient.loggedIn(t.port, "alice");
    const send = (id: number) => ({
      type: MsgType.SEND,
      id,
      body: { id: newMessageId(), target_username: "bob", type: "text", data: "hi" },
    });
    await raw.send(raw.frame([send(1), send(2)]));
    // Then 5000 malformed ACKs, each in its own frame: each answer waits behind the SENTs.
    const acks = 5000;
    const frames = [];
    for (let i = 0; i < acks; i++) {
      frames.push(raw.frame([{ type: MsgType.ACK, id: 0, body: "not a seq" }]));
    }
    await raw.send(concat(frames));
    assert.ok(await bystander.ping() >= 0, "the server keeps serving others");
    await new Promise((r) => setTimeout(r, 300));
    const handled = await failures(t, "BAD_REQUEST");
    assert.ok(
      handled <= MAX_HELD_REPLIES,
      `${handled} ACKs were handled while their answers could not leave`,
    );
    open();
    const got: Message[] = [];
    while (got.length < 2 + acks) got.push(...(await raw.receive())!);
    assert.deepEqual(got.slice(0, 2).map((m) => [m.type, m.id]), [[MsgType.SENT, 1], [
      MsgType.SENT,
      2,
    ]]);
    assert.ok(
      got.slice(2).every((m) => (m.body as { code: number }).code === ErrorCode.BAD_REQUEST),
    );
    raw.close();
  } finally {
    open();
    await t.stop();
  }
});

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
