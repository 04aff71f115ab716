/** backupDataDir() against a KV file that another connection keeps writing to. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { backupDataDir } from "../../src/admin/backup.ts";
import { parseLine } from "../../src/admin/backup_format.ts";

Deno.test("backupDataDir() holds the store as of one instant while writes go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-backup-" });
  const kv = await Deno.openKv(join(dir, "parley.kv"));
  try {
    // Each commit adds 20 "a" rows and one "b" row, so any one instant has 20 a per b. The
    // listing spans many pages, which a backup read from the live file would mix.
    let round = 0;
    const commit = async () => {
      const op = kv.atomic();
      for (let j = 0; j < 20; j++) op.set(["a", round, j], j);
      op.set(["b", round++], true);
      await op.commit();
    };
    while (round < 200) await commit();
    let writing = true;
    const writer = (async () => {
      while (writing) await commit();
    })();
    const file = join(dir, "store.backup");
    const counts = await Promise.all([1, 2, 3].map(async (i) => {
      const c = await backupDataDir(dir, `${file}.${i}`);
      return { c, text: await Deno.readTextFile(`${file}.${i}`) };
    }));
    writing = false;
    await writer;
    for (const { c, text } of counts) {
      let a = 0;
      let b = 0;
      for (const line of text.trimEnd().split("\n").slice(1)) {
        const parsed = parseLine(line);
        if (parsed.kind !== "entry") continue;
        if (parsed.key[0] === "a") a++;
        else b++;
      }
      assert.equal(a + b, c.entries);
      assert.ok(b >= 200);
      assert.equal(a, 20 * b, `${a} a rows for ${b} b rows`);
    }
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
