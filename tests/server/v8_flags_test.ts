import assert from "node:assert/strict";
import { V8_FLAGS, V8_FLAGS_ARG } from "../../src/server/v8_flags.ts";
import { compileArgs } from "../../scripts/compile.ts";
import { denoEval, ROOT } from "../helpers/cli.ts";

Deno.test("deno task start and the compiled binary run with the V8 settings", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  assert.ok(
    (config.tasks.start as string).split(" ").includes(V8_FLAGS_ARG),
    `deno.json's start task lacks ${V8_FLAGS_ARG}`,
  );
  assert.ok(compileArgs(null).includes(V8_FLAGS_ARG));
});

// V8 stops a process whose flags it does not know, so a Deno upgrade that drops one would keep
// the server from starting: this fails first.
Deno.test("this Deno's V8 knows every flag in V8_FLAGS", async () => {
  assert.ok(V8_FLAGS.length > 0);
  assert.equal(await denoEval([V8_FLAGS_ARG], "console.log('ok')"), "ok");
});
