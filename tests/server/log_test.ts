/**
 * The server log: its line formats, and standard output that batches a turn's lines into one
 * write without losing any when the process exits or fails right after logging them.
 */

import assert from "node:assert/strict";
import { createLogger } from "../../src/server/log.ts";

const LOG_MODULE = new URL("../../src/server/log.ts", import.meta.url).href;

/** Runs `body` in a child Deno with the default (standard output) logger as `log`. */
async function child(body: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `import { createLogger } from "${LOG_MODULE}";
const log = createLogger();
${body}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** A text line's time, level, event and the fields after them. */
function parse(line: string): [string, string, string, string] {
  const m = /^(\S+) (\S+) +(\S+) ?(.*)$/.exec(line);
  assert.ok(m, `not a log line: ${line}`);
  return [m[1], m[2], m[3], m[4]];
}

function events(stdout: string): string[] {
  return stdout.trim().split("\n").map((line) => parse(line)[2]);
}

Deno.test("log lines are text with quoted values, filtered by level", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", write: (l) => lines.push(l) });
  log.debug("hidden");
  log.info("session.login", { user: "alice", note: "two words", empty: "", n: 3, gone: undefined });
  assert.deepEqual(lines.length, 1);
  const [time, level, event, fields] = parse(lines[0]);
  assert.ok(!Number.isNaN(Date.parse(time)));
  assert.deepEqual([level, event], ["INFO", "session.login"]);
  assert.equal(fields, 'user=alice note="two words" empty="" n=3');
});

Deno.test("JSON log lines carry time, level, event and fields", () => {
  const lines: string[] = [];
  const log = createLogger({ json: true, write: (l) => lines.push(l) });
  log.warn("session.flooding", { user: "bob" });
  const parsed = JSON.parse(lines[0]);
  assert.deepEqual([parsed.level, parsed.event, parsed.user], ["warn", "session.flooding", "bob"]);
  assert.ok(!Number.isNaN(Date.parse(parsed.time)));
});

Deno.test("lines logged in one turn all reach stdout, in order, across turns", async () => {
  const r = await child(`log.info("one"); log.info("two");
await new Promise((r) => setTimeout(r, 5));
log.info("three");`);
  assert.deepEqual(r.code, 0);
  assert.deepEqual(events(r.stdout), ["one", "two", "three"]);
});

Deno.test("lines logged right before Deno.exit are not lost", async () => {
  const r = await child(`log.info("first"); log.error("last", { code: 7 }); Deno.exit(7);`);
  assert.deepEqual(r.code, 7);
  assert.deepEqual(events(r.stdout), ["first", "last"]);
});

Deno.test("lines logged right before an uncaught error are not lost", async () => {
  const r = await child(`setTimeout(() => { log.info("before"); throw new Error("boom"); }, 1);`);
  assert.notEqual(r.code, 0);
  assert.deepEqual(events(r.stdout), ["before"]);
  assert.ok(r.stderr.includes("boom"), r.stderr);
});
