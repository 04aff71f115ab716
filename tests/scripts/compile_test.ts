/** The compile task cannot run here (it downloads denort), so its command lines are checked. */

import assert from "node:assert/strict";
import { compileArgs, PERMISSIONS, permissionsFor, TARGETS } from "../../scripts/compile.ts";
import { ROOT } from "../helpers/cli.ts";
import { V8_FLAGS_ARG } from "../../src/server/v8_flags.ts";

Deno.test("compileArgs() builds main.ts with KV, the server's permissions and the web client's files", () => {
  assert.deepEqual(compileArgs(null), [
    "compile",
    "--unstable-kv",
    V8_FLAGS_ARG,
    ...permissionsFor(null),
    "--include",
    "src/webapp/static",
    "--include",
    "src/webapp/dist",
    "--output",
    "dist/parley",
    "main.ts",
  ]);
  const arm = compileArgs("aarch64-unknown-linux-gnu");
  assert.deepEqual(arm.slice(arm.indexOf("--target"), arm.indexOf("--target") + 4), [
    "--target",
    "aarch64-unknown-linux-gnu",
    "--output",
    "dist/parley-aarch64-unknown-linux-gnu",
  ]);
});

Deno.test("only Linux builds may load libcrypto through FFI", () => {
  for (const target of TARGETS) {
    const args = compileArgs(target);
    assert.equal(args.includes("--allow-ffi"), target.includes("-linux-"), target);
    for (const p of PERMISSIONS) assert.ok(args.includes(p), `${target} lacks ${p}`);
  }
});

Deno.test("deno task compile --all --dry-run prints one command per release target", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile", "--all", "--dry-run"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(lines.length, TARGETS.length);
  for (const [i, target] of TARGETS.entries()) {
    assert.equal(lines[i], `deno ${compileArgs(target).join(" ")}`);
  }
});

Deno.test("the compile task refuses an unknown target", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile", "--target", "pdp11", "--dry-run"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /unknown target "pdp11"/);
});
