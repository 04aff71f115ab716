/**
 * The web client's bundle, src/webapp/dist/app.js, is committed so that `parley serve` and
 * `deno compile` need no build step. These tests keep it honest: it imports no `node:` module
 * (a browser cannot load one), and it is exactly what `deno task web:build` makes from the
 * sources now (the bundler's output is deterministic: two builds of the same sources are equal
 * byte for byte), so a source change without a rebuild fails here.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../helpers/cli.ts";

const BUNDLE = join(ROOT, "src", "webapp", "dist", "app.js");
const OUTPUT_FLAG = "-o src/webapp/dist/app.js";

/** The web:build task's command, with its output sent to `out`. */
async function buildCommand(out: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const task = config.tasks["web:build"] as string;
  assert.ok(task.includes(OUTPUT_FLAG), `web:build writes with ${OUTPUT_FLAG}`);
  const args = task.replace(OUTPUT_FLAG, `-o ${out}`).split(/\s+/);
  assert.equal(args[0], "deno");
  return args.slice(1);
}

/** `node:` specifiers a bundle imports (statically or dynamically), or requires. */
export function nodeImports(code: string): string[] {
  const found = code.matchAll(/(?:from|import|require)\s*\(?\s*["'](node:[^"']+)["']/g);
  return [...new Set([...found].map((m) => m[1]))].sort();
}

Deno.test("nodeImports() finds static, dynamic and bare node: imports in minified code", () => {
  assert.deepEqual(
    nodeImports(`import{a}from"node:crypto";const b=await import("node:path");import"node:fs"`),
    ["node:crypto", "node:fs", "node:path"],
  );
  assert.deepEqual(nodeImports(`const s="see node:crypto";`), []);
});

Deno.test("the committed web bundle imports no node: module", async () => {
  assert.deepEqual(nodeImports(await Deno.readTextFile(BUNDLE)), []);
});

Deno.test("the committed web bundle is what deno task web:build makes now", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-web-build-" });
  try {
    const out = join(dir, "app.js");
    const build = await new Deno.Command(Deno.execPath(), {
      args: await buildCommand(out),
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
    const fresh = await Deno.readTextFile(out);
    const committed = await Deno.readTextFile(BUNDLE);
    assert.ok(
      fresh === committed,
      `src/webapp/dist/app.js is stale (${committed.length} bytes committed, ${fresh.length} ` +
        `built): run deno task web:build and commit the result`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
