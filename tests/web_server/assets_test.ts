import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadAssets, MemoryAssets, REQUIRED_ASSETS } from "../../src/server/web/assets.ts";

const dirUrl = (path: string) => pathToFileURL(path + "/");

Deno.test("loadAssets() reads static/ and dist/ into one table, by path, with types", async () => {
  const root = await Deno.makeTempDir({ prefix: "parley-assets-" });
  try {
    await Deno.mkdir(join(root, "static", "icons"), { recursive: true });
    await Deno.mkdir(join(root, "dist"));
    await Deno.writeTextFile(join(root, "static", "index.html"), "<!doctype html>");
    await Deno.writeTextFile(join(root, "static", "style.css"), "body{}");
    await Deno.writeFile(join(root, "static", "icons", "a.png"), new Uint8Array([137, 80]));
    await Deno.writeTextFile(join(root, "static", "notes.unknown"), "left out");
    await Deno.writeTextFile(join(root, "static", ".hidden.js"), "left out");
    await Deno.writeTextFile(join(root, "dist", "app.js"), "1;");
    const assets = await loadAssets([dirUrl(join(root, "static")), dirUrl(join(root, "dist"))]);
    assert.deepEqual(assets.missing, []);
    assert.equal(assets.get("/app.js")?.contentType, "text/javascript; charset=utf-8");
    assert.equal(new TextDecoder().decode(assets.get("/app.js")!.bytes), "1;");
    assert.equal(assets.get("/icons/a.png")?.contentType, "image/png");
    assert.equal(assets.get("/notes.unknown"), undefined);
    assert.equal(assets.get("/.hidden.js"), undefined);
    // Without the build: the table says what is missing; a dir that does not exist is no error.
    const unbuilt = await loadAssets([dirUrl(join(root, "static")), dirUrl(join(root, "none"))]);
    assert.deepEqual(unbuilt.missing, ["/app.js"]);
    // The same file in both dirs is refused.
    await Deno.writeTextFile(join(root, "dist", "style.css"), "p{}");
    await assert.rejects(
      () => loadAssets([dirUrl(join(root, "static")), dirUrl(join(root, "dist"))]),
      /style\.css is in both/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("MemoryAssets lists the required files it lacks and refuses paths that are not paths", () => {
  assert.deepEqual(MemoryAssets.of({}).missing, REQUIRED_ASSETS);
  assert.throws(() => MemoryAssets.of({ "app.js": "" }), /Not an asset path/);
  assert.throws(() => MemoryAssets.of({ "/": "" }), /Not an asset path/);
});
