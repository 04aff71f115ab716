/** Completion: how a message's durability reaches whoever waits for it. */

import assert from "node:assert/strict";
import { Completion, type CompletionListener } from "../../src/store/completion.ts";

function recorder(log: string[], name: string): CompletionListener {
  return { settled: (error) => log.push(`${name}:${error ? error.message : "done"}`) };
}

Deno.test("Completion tells each listener once, and a late one at once", () => {
  const log: string[] = [];
  const c = new Completion();
  c.listen(recorder(log, "a"));
  c.listen(recorder(log, "b"));
  assert.deepEqual(log, []);
  c.resolve();
  c.resolve();
  c.reject(new Error("too late"));
  assert.deepEqual(log, ["a:done", "b:done"]);
  c.listen(recorder(log, "c"));
  assert.deepEqual(log, ["a:done", "b:done", "c:done"]);
});

Deno.test("Completion.promise() follows the outcome", async () => {
  const ok = new Completion();
  const waiting = ok.promise();
  ok.resolve();
  await waiting;
  const bad = new Completion();
  bad.reject(new Error("disk full"));
  await assert.rejects(bad.promise(), /disk full/);
});

Deno.test("a throwing listener neither stops the others nor escapes to whoever settles", () => {
  const printed: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    const log: string[] = [];
    const c = new Completion();
    c.listen({
      settled: () => {
        throw new Error("listener bug");
      },
    });
    c.listen(recorder(log, "after"));
    c.reject(new Error("disk full"));
    assert.deepEqual(log, ["after:disk full"]);
    assert.equal(printed.length, 1);
    // Alone, too: no throw out of resolve().
    const single = new Completion();
    single.listen({
      settled: () => {
        throw new Error("listener bug");
      },
    });
    single.resolve();
    assert.equal(printed.length, 2);
  } finally {
    console.error = original;
  }
});
