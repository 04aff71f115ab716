/** The downloads folder: modes, safe names, the budget and the bounded memory of held images. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Downloads, HELD_BYTES, HELD_IMAGES } from "../../src/cli/downloads.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-downloads-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const unix = Deno.build.os !== "windows";

Deno.test("Downloads writes 0600 files in a 0700 folder and never overwrites", () =>
  withDir(async (dir) => {
    const d = new Downloads(join(dir, "downloads"), 1000);
    const a = await d.save("bob", "cat.png", new Uint8Array([1]));
    const b = await d.save("bob", "cat.png", new Uint8Array([2]));
    assert.equal(a, join(dir, "downloads", "bob-cat.png"));
    assert.equal(b, join(dir, "downloads", "bob-cat (1).png"));
    assert.deepEqual(await Deno.readFile(a), new Uint8Array([1]));
    if (unix) {
      assert.equal((await Deno.stat(a)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(join(dir, "downloads"))).mode! & 0o777, 0o700);
    }
    const odd = await d.save("bob", "../../x\u202egnp.sh", new Uint8Array(1));
    assert.equal(odd, join(dir, "downloads", "bob-.._.._x_gnp.sh"));
  }));

Deno.test("Downloads tightens its own folder made 0755 by an earlier version, not a chosen one", {
  ignore: !unix,
}, () =>
  withDir(async (dir) => {
    const own = join(dir, "own");
    const chosen = join(dir, "chosen");
    for (const f of [own, chosen]) {
      await Deno.mkdir(f);
      await Deno.chmod(f, 0o755);
    }
    await new Downloads(own, 100).save("a", "b", new Uint8Array(1));
    await new Downloads(chosen, 100, false).save("a", "b", new Uint8Array(1));
    assert.equal((await Deno.stat(own)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(chosen)).mode! & 0o777, 0o755);
  }));

Deno.test("Downloads saves a friend's images within the budget and holds the rest", () =>
  withDir(async (dir) => {
    const d = new Downloads(dir, 250);
    assert.ok("saved" in await d.image("amy", "1.png", new Uint8Array(100), true));
    assert.deepEqual(await d.image("zed", "2.png", new Uint8Array(100), false), {
      held: 1,
      why: "stranger",
      error: undefined,
    });
    assert.ok("saved" in await d.image("amy", "3.png", new Uint8Array(100), true));
    assert.deepEqual(await d.image("amy", "4.png", new Uint8Array(100), true), {
      held: 2,
      why: "budget",
      error: undefined,
    });
    assert.equal(d.spent, 200);
    const saved = await d.saveHeld(1);
    assert.equal(saved.path, join(dir, "zed-2.png"));
    assert.equal(d.spent, 200, "asked for: not counted against the budget");
    assert.deepEqual(d.held(), [2]);
    await assert.rejects(d.saveHeld(1), RangeError);
  }));

Deno.test("Downloads holds at most HELD_BYTES and HELD_IMAGES, dropping the oldest", () =>
  withDir(async (dir) => {
    const d = new Downloads(dir, 0);
    const big = new Uint8Array(HELD_BYTES / 4);
    for (let i = 0; i < 6; i++) await d.image("zed", `${i}.png`, big, false);
    assert.deepEqual(d.held(), [3, 4, 5, 6]);
    assert.equal(d.heldBytes, HELD_BYTES);
    for (let i = 0; i < HELD_IMAGES + 5; i++) {
      await d.image("zed", "s.png", new Uint8Array(1), false);
    }
    assert.equal(d.held().length, HELD_IMAGES);
    assert.equal(d.held()[0], 12);
    const tooBig = await d.image("zed", "huge.png", new Uint8Array(HELD_BYTES + 1), false);
    assert.deepEqual(tooBig, { dropped: "stranger", error: undefined });
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), [], "nothing written");
  }));

Deno.test("Downloads.receive writes NAME.part, named only by finish, never over a file", () =>
  withDir(async (dir) => {
    const d = new Downloads(join(dir, "downloads"), 1000);
    const taken = await d.save("bob", "report.pdf", new Uint8Array([1]));
    const r = await d.receive("bob", "report.pdf");
    assert.equal(r.part, join(dir, "downloads", "bob-report.pdf.part"));
    await r.file.write(new Uint8Array([2, 3]));
    r.file.close();
    const path = await r.finish();
    assert.equal(path, join(dir, "downloads", "bob-report (1).pdf"));
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([2, 3]));
    assert.deepEqual(await Deno.readFile(taken), new Uint8Array([1]), "the first one untouched");
    if (unix) assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);

    const cut = await d.receive("bob", "report.pdf");
    cut.file.close();
    await cut.discard();
    const names = [];
    for await (const e of Deno.readDir(join(dir, "downloads"))) names.push(e.name);
    assert.deepEqual(names.sort(), ["bob-report (1).pdf", "bob-report.pdf"]);
  }));
