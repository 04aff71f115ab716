/** The operator's documentation keeps up with the code. */

import assert from "node:assert/strict";
import defaults from "../config.json" with { type: "json" };

function settings(tree: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(tree).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (path === "accounts.scrypt") return [path];
    return typeof value === "object" && value !== null
      ? settings(value as Record<string, unknown>, path)
      : [path];
  });
}

Deno.test("README documents every setting in config.json with its default", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  for (const path of settings(defaults)) {
    const row = readme.split("\n").find((line) => line.startsWith(`| \`${path}\``));
    assert.ok(row, `README has no row for "${path}"`);
    const value = path.split(".").reduce(
      (v: unknown, k) => (v as Record<string, unknown>)[k],
      defaults,
    );
    const shown = typeof value === "object"
      ? JSON.stringify(value).replaceAll(",", ", ").replaceAll(":", ": ")
      : String(value);
    assert.ok(row.includes(`\`${shown}\``), `README shows another default for "${path}": ${row}`);
  }
});
