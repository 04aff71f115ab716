/**
 * The benchmark (scripts/bench.ts) in its quick mode, as a child process: it must finish, exit 0
 * and print one JSON line with a positive numeric result per scenario. Performance is not asserted.
 */

import assert from "node:assert/strict";
import { ROOT } from "../helpers/cli.ts";

Deno.test("bench.ts --quick runs relay, offline and logins and prints a result line for each", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      "scripts/bench.ts",
      "--quick",
      "--scenario",
      "relay",
      "--scenario",
      "offline",
      "--scenario",
      "logins",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `exit ${out.code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  const results = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  for (const scenario of ["relay", "offline", "logins_resume", "logins_password"]) {
    const line = results.find((r) => r.scenario === scenario);
    assert.ok(line, `no JSON line for ${scenario}:\n${stdout}`);
    assert.equal(typeof line.result, "number", JSON.stringify(line));
    assert.ok(line.result > 0, JSON.stringify(line));
    assert.equal(typeof line.unit, "string");
  }
});

Deno.test("bench.ts --repeat 2 runs twice on fresh servers and prints each measurement's median", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      "scripts/bench.ts",
      "--quick",
      "--scenario",
      "offline",
      "--repeat",
      "2",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `exit ${out.code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  const lines = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  assert.deepEqual(lines.filter((l) => l.run !== undefined).map((l) => l.run), [1, 2]);
  const [median] = lines.filter((l) => l.median_of !== undefined);
  assert.equal(median.median_of, 2);
  assert.equal(median.scenario, "offline");
  assert.deepEqual(
    [...median.result_runs].sort(),
    lines.filter((l) => l.run !== undefined).map((l) => l.result).sort(),
  );
  assert.ok(median.result_runs.includes(median.result));
  // Two fresh servers: stderr names two different server pids.
  const pids = [...stderr.matchAll(/server pid (\d+)/g)].map((m) => m[1]);
  assert.equal(new Set(pids).size, 2, stderr);
});
