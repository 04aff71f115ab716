/**
 * A store written by a newer Parley, met by the real CLI as child processes: every command
 * that opens it refuses with the same sentence and writes nothing.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { endLine, entryLine, headerLine } from "../../src/admin/backup_format.ts";
import { KV_FILE } from "../../src/store/kv_store.ts";
import { SCHEMA_VERSION } from "../../src/store/schema.ts";
import { run } from "../helpers/cli.ts";

const NEWER = SCHEMA_VERSION + 1;
const ANN = { name: "Ann", password: "not read", created: new Date(0) };

async function entries(kvFile: string): Promise<string[]> {
  const kv = await Deno.openKv(kvFile);
  try {
    const out: string[] = [];
    for await (const e of kv.list({ prefix: [] })) {
      out.push(`${JSON.stringify(e.key)}@${e.versionstamp}`);
    }
    return out;
  } finally {
    kv.close();
  }
}

Deno.test("serve and every admin command refuse a newer store with one sentence, writing nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-schema-cli-" });
  try {
    const data = join(dir, "data");
    await Deno.mkdir(data);
    const kv = await Deno.openKv(join(data, KV_FILE));
    await kv.set(["meta", "schema"], NEWER);
    await kv.set(["user", "ann"], ANN);
    kv.close();
    const before = await entries(join(data, KV_FILE));
    const sentence = `parley: The store in "${data}" is schema version ${NEWER}, from a newer ` +
      `Parley (this one reads version ${SCHEMA_VERSION}); run the newer Parley on it\n`;

    const check = (args: string[], r: { code: number; stdout: string; stderr: string }) => {
      const what = args.slice(0, 2).join(" ");
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.ok(r.stderr.endsWith(sentence), `${what}: ${r.stderr}`);
      assert.equal(r.stdout.includes("newer Parley"), false, what);
    };
    // Readers work beside each other; writers take the data dir's lock, so one at a time.
    const readers = [
      ["admin", "users", "--data", data],
      ["admin", "groups", "--data", data],
      ["admin", "stats", "--json", "--data", data],
      ["admin", "invite", "--data", data],
      ["admin", "backup", join(dir, "out.backup"), "--data", data],
      ["serve", "--check-config", "--data", data],
    ];
    const results = await Promise.all(readers.map((args) => run(args)));
    for (const [i, r] of results.entries()) check(readers[i], r);
    const writers = [
      ["admin", "reset-password", "ann", "--password-stdin", "--data", data],
      ["admin", "delete-user", "ann", "--yes", "--data", data],
      ["serve", "--host", "127.0.0.1", "--port", "0", "--data", data],
    ];
    for (const args of writers) check(args, await run(args, { input: "a long password\n" }));
    assert.deepEqual(await entries(join(data, KV_FILE)), before);
    assert.equal(await Deno.stat(join(dir, "out.backup")).catch(() => null), null);

    // A backup of a newer store does not go into a new data dir either.
    const backup = join(dir, "newer.backup");
    await Deno.writeTextFile(
      backup,
      [
        headerLine(),
        entryLine(["meta", "schema"], NEWER),
        entryLine(["user", "ann"], ANN),
        endLine(2),
        "",
      ].join("\n"),
    );
    const target = join(dir, "restored");
    const restore = await run(["admin", "restore", backup, "--data", target]);
    assert.equal(restore.code, 1, restore.stderr);
    assert.equal(
      restore.stderr,
      `parley: ${backup}, line 2: the backup is schema version ${NEWER}, from a newer Parley ` +
        `(this one reads version ${SCHEMA_VERSION}); restore it with the newer Parley; nothing ` +
        "was restored\n",
    );
    assert.equal(await Deno.stat(target).catch(() => null), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
