/**
 * A chat session does not take lines faster than it can send them: with MAX_AHEAD messages still
 * on their way, the next line waits, so that a file piped into `parley connect` is never held in
 * memory whole (the read-ahead waits on the session).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatSession } from "../../src/cli/chat.ts";
import { Downloads } from "../../src/cli/downloads.ts";
import { History } from "../../src/cli/history.ts";
import { MAX_AHEAD } from "../../src/cli/input.ts";

Deno.test("a session with MAX_AHEAD messages on their way takes the next line only as they go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-backpressure-" });
  try {
    const history = await History.open(join(dir, "data"), "127.0.0.1:7070", "me");
    let release = () => {};
    const gate = new Promise<void>((r) => release = r);
    const term = {
      colors: false,
      redraws: false,
      print() {},
      update() {},
      setPrompt() {},
      readLine: () => Promise.resolve(null),
      readSecret: () => Promise.resolve(null),
      close() {},
    };
    const link = {
      client: { isClosed: false },
      seen: { first: () => true, has: () => false },
      // The server answers nothing until the gate opens.
      sendText: async () => {
        await gate;
        return { id: crypto.getRandomValues(new Uint8Array(16)), time: new Date() };
      },
      down: () => new Promise(() => {}),
    };
    const chat = new ChatSession(
      // deno-lint-ignore no-explicit-any
      link as any,
      // deno-lint-ignore no-explicit-any
      term as any,
      history,
      "me",
      new Downloads(join(dir, "downloads"), 0),
    );
    await chat.handle("/world");
    for (let i = 0; i < MAX_AHEAD - 1; i++) await chat.handle(`line ${i}`);
    let taken = false;
    const last = chat.handle("the one that fills it").then(() => taken = true);
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(taken, false, "waits while MAX_AHEAD messages are on their way");
    release();
    await last;
    assert.equal(taken, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
