/** The chat's read-ahead: lines in the order typed, and never more than MAX_AHEAD in memory. */

import assert from "node:assert/strict";
import { MAX_AHEAD, ReadAhead } from "../../src/cli/input.ts";
import type { Terminal } from "../../src/terminal/terminal.ts";

/** A terminal with a paste of 5 × MAX_AHEAD lines to give, counting the lines taken from it. */
function longPaste(): { term: Terminal; read: () => number } {
  let n = 0;
  const term = {
    readLine: () => Promise.resolve(n < 5 * MAX_AHEAD ? `line ${n++}` : null),
  } as unknown as Terminal;
  return { term, read: () => n };
}

Deno.test("a long paste is read ahead only as far as MAX_AHEAD lines, then as they are taken", async () => {
  const { term, read } = longPaste();
  const ahead = new ReadAhead(term, () => false, () => {});
  // The paste answers at once: by the next task the reader has gone as far as it may.
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(read(), MAX_AHEAD, "stops at the bound");
  for (let i = 0; i < 3; i++) {
    const line = await ahead.next();
    assert.equal(line !== "eof" && line.text, `line ${i}`, "in the order typed");
  }
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(read(), MAX_AHEAD + 3, "one more line read for each taken");
});
