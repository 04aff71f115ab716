/** The terminal client's local history: writes that come together (a burst of messages). */

import assert from "node:assert/strict";
import { History } from "../../src/cli/history.ts";

Deno.test("History records messages that arrive together, each counted in its index", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-history-" });
  try {
    const h = await History.open(dir, "127.0.0.1:1", "bob");
    const entry = (i: number) => ({
      id: i.toString(16).padStart(32, "0"),
      from: "alice",
      time: new Date(i * 1000).toISOString(),
      kind: "text" as const,
      text: `m${i}`,
    });
    // At once, as the chat records a burst: each append rewrites the index.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => h.append("@alice", "alice", entry(i), true)),
    );
    // Which append finishes last is the file system's affair; each is counted, none failed.
    const again = await History.open(dir, "127.0.0.1:1", "bob");
    assert.match(again.recent()[0].last.text, /^m\d+$/);
    assert.equal(again.recent()[0].unread, 20);
    assert.equal((await again.last("@alice", 100)).length, 20);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
