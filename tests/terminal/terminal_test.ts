/** The line editor's pure parts: Backspace and the arrows step over whole graphemes. */

import assert from "node:assert/strict";
import { graphemeEnd, graphemeStart } from "../../src/terminal/terminal.ts";

Deno.test("graphemeStart() takes a ZWJ emoji, a flag and an accented letter whole", () => {
  for (const g of ["👩‍👩‍👧", "🇫🇷", "e\u0301", "👍🏽", "a"]) {
    const line = [..."hi " + g];
    assert.equal(graphemeStart(line, line.length), 3, g);
    assert.equal(graphemeEnd(line, 3), line.length, g);
  }
  assert.equal(graphemeStart([], 0), 0);
  assert.equal(graphemeEnd([..."ab"], 2), 2);
});
