/**
 * The layer rules of src/: every import between two folders must be an edge the table below
 * allows, and no folder reaches itself through others. The imports are read by Deno's own module
 * graph (`deno info --json`), so static imports, `export … from`, type-only imports and dynamic
 * `import("…")` with a literal all count, exactly as Deno resolves them.
 *
 * main.ts (outside src/) is the entry point: it may import anything, and nothing in src/
 * imports it. src/version.ts is a leaf of its own ("version"): the release string, read by
 * whatever prints or records the version.
 */

import assert from "node:assert/strict";
import { join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * Who may import whom. Columns are two spaces or more apart; "-" is nothing, "*" every layer
 * above. Each line names only lines above it, so the table itself has no cycle. A folder that
 * is not listed is reported: a new folder needs a line here.
 */
const LAYERS = `
layer      why                                                      may import
protocol   the wire format: pure, tested on bytes alone             -
clock      the one source of time; tests replace it                 -
invariant  asserted invariants: a broken one fails tests            -
version    the release string                                       -
metrics    counters and their text form                             -
terminal   safe printing, prompts, usage errors: cli's and admin's  -
cluster    the NATS connection and names: cluster store and hub     -
crypto     keys, handshake, sealing, over protocol's bytes          protocol invariant
config     settings: defaults, then the file, then flags            protocol
transport  a sealed frame stream over a connection, no handlers     protocol crypto clock invariant
store      Deno KV, NATS and the data dir's files, knows no server  protocol crypto clock invariant cluster
client     the client library, no terminal: applications embed it   protocol crypto transport clock invariant
server     handlers over store and transport, never a UI            protocol crypto transport store config metrics clock invariant version cluster
admin      data dir upkeep beside the server, never through it      protocol crypto store config metrics clock invariant terminal version cluster
cli        the commands a user types: the top                       *
webapp     the browser client: page, IndexedDB, no node: or Deno    protocol crypto transport client clock invariant
`;

/** Files outside src/ that a layer may import: data, not code. */
const OUTSIDE = `
layer      why                                                      may import
config     the defaults, one file for README and code               config.json
`;

/** Packages (npm, through deno.json's import map) that a layer may import. */
const PACKAGES = `
layer      why                                                      may import
cluster    the NATS client, in one door (src/cluster/nats.ts)       @nats-io/transport-node @nats-io/jetstream @nats-io/kv
`;

type Table = Map<string, Set<string>>;

function parseTable(text: string): Table {
  const out: Table = new Map();
  for (const row of text.trim().split("\n").slice(1)) {
    const [layer, why, uses, ...rest] = row.split(/\s{2,}/);
    assert.ok(why && uses && rest.length === 0, `the table row "${row}" needs three columns`);
    const names = uses === "*" ? [...out.keys()] : uses === "-" ? [] : uses.split(" ");
    out.set(layer, new Set(names));
  }
  return out;
}

const ALLOWED = parseTable(LAYERS);
const ALLOWED_OUTSIDE = parseTable(OUTSIDE);
const ALLOWED_PACKAGES = parseTable(PACKAGES);

/** One import of a file under src/, with paths relative to the root and "/" separators. */
interface Edge {
  from: string;
  /** The file imported; null when it is not a file (a package, a URL, a built-in). */
  to: string | null;
  specifier: string;
  dynamic: boolean;
}

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Every .ts file under `dir`, recursively. */
async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await tsFiles(path));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

interface InfoDependency {
  specifier: string;
  code?: { specifier?: string };
  type?: { specifier?: string };
  isDynamic?: boolean;
}

/** The imports of every file under root/src, as Deno's module graph reads them. */
async function readImports(root: string): Promise<Edge[]> {
  const src = join(root, "src");
  const work = await Deno.makeTempDir({ prefix: "parley-layers-" });
  try {
    // One entry that imports every file, so that one `deno info` reads them all.
    const entry = join(work, "all.ts");
    const files = await tsFiles(src);
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import ${JSON.stringify(pathToFileURL(f).href)};\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--no-lock", "--no-remote", "--no-npm", entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { local?: string; dependencies?: InfoDependency[] }[];
    };
    const name = (path: string) => relative(root, path).split(sep).join("/");
    const edges: Edge[] = [];
    for (const m of graph.modules) {
      if (!m.local?.startsWith(src + sep)) continue;
      for (const d of m.dependencies ?? []) {
        const target = d.code?.specifier ?? d.type?.specifier;
        edges.push({
          from: name(m.local),
          to: target?.startsWith("file:") ? name(fileURLToPath(target)) : null,
          specifier: d.specifier,
          dynamic: d.isDynamic === true,
        });
      }
    }
    return edges;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** The layer of a path under src/: its folder, or its name for a file at the top. */
function layerOf(path: string | null): string | null {
  const parts = path?.split("/") ?? [];
  if (parts[0] !== "src") return null;
  return parts.length === 2 ? parts[1].replace(/\.ts$/, "") : parts[1];
}

/** One sentence per import that the tables do not allow. */
function violations(
  edges: Edge[],
  allowed: Table,
  outside: Table,
  packages: Table = new Map(),
): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from)!;
    const how = e.dynamic ? "dynamically imports" : "imports";
    const to = layerOf(e.to);
    if (e.to === null) {
      if (!e.specifier.startsWith("node:") && !packages.get(from)?.has(e.specifier)) {
        out.push(`${e.from} ${how} "${e.specifier}": only node: built-ins and files of the tree`);
      }
    } else if (to === null) {
      if (!outside.get(from)?.has(e.to)) {
        out.push(`${e.from} ${how} ${e.to}, outside src/, which "${from}" may not import`);
      }
    } else if (to === from) {
      continue;
    } else if (!allowed.has(from)) {
      out.push(`${e.from}: "${from}" is not in the layer table; add a line for it`);
    } else if (!allowed.get(from)!.has(to)) {
      out.push(`${e.from} ${how} ${e.to}: "${from}" may not import "${to}"`);
    }
  }
  return [...new Set(out)];
}

/** The folder-to-folder graph of the imports under src/. */
function layerGraph(edges: Edge[]): Table {
  const graph: Table = new Map();
  for (const e of edges) {
    const from = layerOf(e.from)!;
    const to = layerOf(e.to);
    if (to === null || to === from) continue;
    if (!graph.has(from)) graph.set(from, new Set());
    graph.get(from)!.add(to);
  }
  return graph;
}

/** The cycles of a graph, each as "a → b → a", found by a depth-first walk. */
function cycles(graph: Table): string[] {
  const out: string[] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    path.push(node);
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      if (state.get(next) === "open") {
        out.push([...path.slice(path.indexOf(next)), next].join(" → "));
      } else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return out;
}

Deno.test("src/ imports only what the layer table allows", async () => {
  const edges = await readImports(ROOT);
  // The reading works: hundreds of imports, across folders and within them.
  assert.ok(edges.length > 200, `only ${edges.length} imports read`);
  assert.ok(edges.some((e) => e.from === "src/server/server.ts" && e.to?.startsWith("src/store/")));
  assert.deepEqual(violations(edges, ALLOWED, ALLOWED_OUTSIDE, ALLOWED_PACKAGES), []);
});

Deno.test("no cycle between the folders of src/", async () => {
  assert.deepEqual(cycles(layerGraph(await readImports(ROOT))), []);
});

Deno.test("the layer table names only its own layers, each after what it uses", () => {
  const order = [...ALLOWED.keys()];
  for (const [i, layer] of order.entries()) {
    for (const u of ALLOWED.get(layer)!) {
      assert.ok(order.indexOf(u) >= 0, `"${layer}" may import "${u}", which is not a layer`);
      assert.ok(order.indexOf(u) < i, `"${layer}" may import "${u}", which comes after it`);
    }
  }
  assert.deepEqual(cycles(ALLOWED), []);
});

Deno.test("the layer check names forbidden, dynamic, outside and package imports, and cycles", async () => {
  const root = await Deno.makeTempDir({ prefix: "parley-layers-fixture-" });
  try {
    const files: Record<string, string> = {
      "src/protocol/a.ts": 'import { b } from "../store/b.ts";\nexport const a = b;\n',
      "src/store/b.ts": 'export { a } from "../protocol/a.ts";\nexport const b = 1;\n',
      "src/store/b2.ts": 'import "./b.ts";\nimport "node:path";\n',
      "src/crypto/c.ts": 'export const c = () => import("../server/d.ts");\n',
      "src/server/d.ts": 'import type { a } from "../protocol/a.ts";\nexport type D = typeof a;\n',
      "src/admin/e.ts": 'import "left-pad";\nimport "../../main.ts";\n',
      "src/newfolder/f.ts": 'import "../protocol/a.ts";\n',
      "main.ts": "export {};\n",
      "deno.json": "{}\n",
    };
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(join(root, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, path), text);
    }
    const edges = await readImports(root);
    assert.deepEqual(violations(edges, ALLOWED, ALLOWED_OUTSIDE).sort(), [
      'src/admin/e.ts imports "left-pad": only node: built-ins and files of the tree',
      'src/admin/e.ts imports main.ts, outside src/, which "admin" may not import',
      'src/crypto/c.ts dynamically imports src/server/d.ts: "crypto" may not import "server"',
      'src/newfolder/f.ts: "newfolder" is not in the layer table; add a line for it',
      'src/protocol/a.ts imports src/store/b.ts: "protocol" may not import "store"',
    ]);
    assert.deepEqual(cycles(layerGraph(edges)), ["protocol → store → protocol"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
