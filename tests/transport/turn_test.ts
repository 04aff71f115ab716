/** afterTurn(): the end-of-turn flush that channels seal and write in. */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { afterTurn } from "../../src/transport/turn.ts";

Deno.test("afterTurn() runs callbacks after every microtask of the turn, in order", async () => {
  // Start from a fresh turn, with nothing of an earlier test still queued.
  await new Promise<void>((resolve) => afterTurn(resolve));
  await new Promise((resolve) => setTimeout(resolve, 0));
  const order: string[] = [];
  const done = new Promise<void>((resolve) => {
    afterTurn(() => order.push("turn 1"));
    afterTurn(() => {
      order.push("turn 2");
      resolve();
    });
  });
  (async () => {
    for (let i = 0; i < 50; i++) await Promise.resolve();
    order.push("microtasks");
  })();
  await done;
  assert.deepEqual(order, ["microtasks", "turn 1", "turn 2"]);
});

Deno.test("afterTurn() runs the other callbacks when one throws", async () => {
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const ran = await new Promise<string[]>((resolve) => {
      const seen: string[] = [];
      afterTurn(() => seen.push("first"));
      afterTurn(() => {
        throw new Error("boom");
      });
      afterTurn(() => resolve([...seen, "third"]));
    });
    assert.deepEqual(ran, ["first", "third"]);
    assert.equal(errors.length, 1);
  } finally {
    console.error = original;
  }
});

Deno.test("a process that used afterTurn() exits once it has nothing left to do", async () => {
  const turn = fileURLToPath(new URL("../../src/transport/turn.ts", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { afterTurn } from "${turn}"; afterTurn(() => console.log("ran"));`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    child.output().then((o) => new TextDecoder().decode(o.stdout).trim()),
    new Promise<string>((r) => timer = setTimeout(() => r("still running after 20 s"), 20_000)),
  ]);
  clearTimeout(timer);
  if (outcome.startsWith("still")) child.kill("SIGKILL");
  assert.equal(outcome, "ran");
});
