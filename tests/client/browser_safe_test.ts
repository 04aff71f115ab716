/**
 * What the web app loads must run in a browser: no `node:` import and no `Deno.` anywhere in the
 * module graph of the browser's entry points. Read from Deno's own module graph, like the layer
 * test, so that an import added deep down is found at once, not when a page fails to load.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../../", import.meta.url);

/** The modules the browser imports; everything they import is checked too. */
export const BROWSER_ENTRIES = [
  "src/client/core.ts",
  "src/client/link.ts",
  "src/client/platform.ts",
  "src/client/pins.ts",
  "src/client/files.ts",
  "src/crypto/fingerprint.ts",
  "src/client/web_platform.ts",
  "src/crypto/web/cipher.ts",
  "src/crypto/web/handshake.ts",
  "src/transport/web_channel.ts",
  "src/transport/web_handshake_io.ts",
  "src/webapp/main.ts",
];

interface GraphModule {
  specifier: string;
  local?: string;
  dependencies?: { specifier: string }[];
}

async function graphOf(entries: string[]): Promise<GraphModule[]> {
  const work = await Deno.makeTempDir({ prefix: "parley-browser-safe-" });
  try {
    const entry = `${work}/entry.ts`;
    await Deno.writeTextFile(
      entry,
      entries.map((e) => `import ${JSON.stringify(new URL(e, ROOT).href)};\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--no-lock", "--no-remote", "--no-npm", entry],
      cwd: fileURLToPath(ROOT),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: GraphModule[] };
    return graph.modules.filter((m) => m.local !== entry);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** Code without its comments, closely enough to find a use of `Deno.`. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
}

/** One sentence per way the graph of `entries` would fail in a browser. */
async function browserProblems(entries: string[]): Promise<string[]> {
  const problems: string[] = [];
  const root = fileURLToPath(ROOT);
  for (const m of await graphOf(entries)) {
    const name = m.local ? m.local.slice(root.length) : m.specifier;
    if (m.specifier.startsWith("node:")) continue; // reported at the importer
    for (const d of m.dependencies ?? []) {
      if (d.specifier.startsWith("node:")) problems.push(`${name} imports "${d.specifier}"`);
    }
    if (m.local && /\bDeno\./.test(withoutComments(await Deno.readTextFile(m.local)))) {
      problems.push(`${name} uses Deno.`);
    }
  }
  return problems.sort();
}

Deno.test("the browser's modules import no node: built-in and use no Deno API", async () => {
  assert.deepEqual(await browserProblems(BROWSER_ENTRIES), []);
});

Deno.test("the browser check finds a node: import and a use of Deno, however deep", async () => {
  // The Deno entry of the client library pulls in TCP and node:crypto: the check must see both.
  const problems = await browserProblems(["src/client/client.ts"]);
  assert.ok(problems.some((p) => p.includes('imports "node:crypto"')), problems.join("\n"));
  assert.ok(
    problems.some((p) => p.startsWith("src/transport/tcp.ts uses Deno.")),
    problems.join("\n"),
  );
});
