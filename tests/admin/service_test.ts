/** scripts/parley.service: a well-formed unit whose command lines the server accepts. */

import assert from "node:assert/strict";
import { join } from "node:path";
import defaults from "../../config.json" with { type: "json" };
import { ROOT, run } from "../helpers/cli.ts";

type Unit = Map<string, Map<string, string[]>>;

/** systemd's INI dialect, as far as this unit uses it; throws on any other line. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | null = null;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      assert.ok(!unit.has(header[1]), `line ${i + 1}: section [${header[1]}] twice`);
      unit.set(header[1], section = new Map());
      return;
    }
    const setting = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(setting, `line ${i + 1} is not KEY=VALUE: ${line}`);
    assert.ok(section, `line ${i + 1} comes before any section`);
    section.set(setting[1], [...section.get(setting[1]) ?? [], setting[2]]);
  });
  return unit;
}

function one(unit: Unit, section: string, key: string): string {
  const values = unit.get(section)?.get(key);
  assert.ok(values?.length === 1, `[${section}] needs exactly one ${key}=`);
  return values[0];
}

Deno.test("parley.service is a well-formed, hardened unit for a dedicated user", async () => {
  const unit = parseUnit(await Deno.readTextFile(join(ROOT, "scripts", "parley.service")));
  assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
  const expected: [string, string][] = [
    ["User", "parley"],
    ["StateDirectory", "parley"],
    ["WorkingDirectory", "/var/lib/parley"],
    ["Restart", "on-failure"],
    ["KillSignal", "SIGTERM"],
    ["NoNewPrivileges", "true"],
    ["ProtectSystem", "strict"],
    ["ProtectHome", "true"],
    ["PrivateTmp", "true"],
    ["ReadWritePaths", "/var/lib/parley"],
  ];
  for (const [key, value] of expected) assert.equal(one(unit, "Service", key), value, key);
  assert.match(one(unit, "Service", "TimeoutStopSec"), /^\d+$/);
  const files = Number(one(unit, "Service", "LimitNOFILE"));
  assert.ok(files > defaults.limits.maxConnections, "room for every connection");
  assert.equal(one(unit, "Install", "WantedBy"), "multi-user.target");
  const start = one(unit, "Service", "ExecStart").split(/\s+/);
  assert.deepEqual(start.slice(0, 2), ["/usr/local/bin/parley", "serve"]);
  assert.equal(start[start.indexOf("--data") + 1], "/var/lib/parley");
});

Deno.test("parley serve --check-config accepts the unit's ExecStart and ExecStartPre flags", async () => {
  const unit = parseUnit(await Deno.readTextFile(join(ROOT, "scripts", "parley.service")));
  const dir = await Deno.makeTempDir({ prefix: "parley-unit-" });
  try {
    for (const key of ["ExecStart", "ExecStartPre"]) {
      const [, command, ...flags] = one(unit, "Service", key).split(/\s+/);
      // Same flags, but a temp data dir instead of /var/lib/parley.
      flags[flags.indexOf("--data") + 1] = join(dir, "data");
      if (!flags.includes("--check-config")) flags.push("--check-config");
      const r = await run([command, ...flags]);
      assert.equal(r.code, 0, `${key}: ${r.stderr}`);
      assert.match(r.stdout, /configuration is valid/);
      assert.match(r.stdout, /log\s+JSON lines/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
