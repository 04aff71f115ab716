/** The documentation keeps up with the code, and its links lead somewhere. */

import assert from "node:assert/strict";
import defaults from "../config.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url);

/** Every document a reader can follow a link from. */
const DOCS = ["README.md", "CHANGELOG.md", "docs/operating.md", "docs/architecture.md"]
  .concat("docs/performance.md", "docs/chatting.md", "docs/web.md");

/** README is the front page; the rest lives in docs/ (issue 19). */
const README_MAX_BYTES = 16 * 1024;

function settings(tree: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(tree).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (path === "accounts.scrypt") return [path];
    return typeof value === "object" && value !== null
      ? settings(value as Record<string, unknown>, path)
      : [path];
  });
}

Deno.test("docs/operating.md documents every setting in config.json with its default", async () => {
  const guide = await Deno.readTextFile(new URL("docs/operating.md", ROOT));
  for (const path of settings(defaults)) {
    const row = guide.split("\n").find((line) => line.startsWith(`| \`${path}\``));
    assert.ok(row, `docs/operating.md has no row for "${path}"`);
    const value = path.split(".").reduce(
      (v: unknown, k) => (v as Record<string, unknown>)[k],
      defaults,
    );
    const shown = typeof value === "object"
      ? JSON.stringify(value).replaceAll(",", ", ").replaceAll(":", ": ")
      : String(value);
    assert.ok(
      row.includes(`\`${shown}\``),
      `docs/operating.md shows another default for "${path}": ${row}`,
    );
  }
});

Deno.test("README.md stays a front page", async () => {
  const size = (await Deno.stat(new URL("README.md", ROOT))).size;
  assert.ok(size <= README_MAX_BYTES, `README.md has ${size} bytes, over ${README_MAX_BYTES}`);
});

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** Every anchor of a Markdown document, numbered as GitHub numbers repeated headings. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const m = !fenced && /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The targets of inline links `[text](target)`, outside code blocks and code spans. */
function links(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    if (fenced) continue;
    const text = line.replace(/`[^`]*`/g, "");
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) out.push(m[1]);
  }
  return out;
}

/** What is wrong with each relative link of `doc` (a path from the repository's root). */
async function brokenLinks(doc: string): Promise<string[]> {
  const text = await Deno.readTextFile(new URL(doc, ROOT));
  const broken: string[] = [];
  for (const target of links(text)) {
    if (/^[a-z]+:/i.test(target)) continue; // https:, mailto: …
    const [path, anchor] = target.split("#", 2);
    const file = path === "" ? new URL(doc, ROOT) : new URL(path, new URL(doc, ROOT));
    let body: string;
    try {
      body = await Deno.readTextFile(file);
    } catch {
      try {
        if ((await Deno.stat(file)).isDirectory && anchor === undefined) continue;
      } catch { /* reported below */ }
      broken.push(`${doc}: ${target} (no such file)`);
      continue;
    }
    if (anchor !== undefined && !anchors(body).has(anchor)) {
      broken.push(`${doc}: ${target} (no such heading)`);
    }
  }
  return broken;
}

Deno.test("every relative link in the docs leads to a file and heading that exist", async () => {
  const broken = (await Promise.all(DOCS.map(brokenLinks))).flat();
  assert.deepEqual(broken, []);
});

Deno.test("anchors() and links() read headings and links as GitHub does", () => {
  const md = [
    "# Parley",
    "## Health and metrics",
    "## 12. Delivery and acknowledgement",
    "### `parley admin` commands",
    "## Notes",
    "## Notes",
    "```",
    "## not a heading [x](nowhere.md)",
    "```",
    "See [ops](docs/operating.md#health-and-metrics) and `[no](code.md)`.",
  ].join("\n");
  assert.deepEqual([...anchors(md)], [
    "parley",
    "health-and-metrics",
    "12-delivery-and-acknowledgement",
    "parley-admin-commands",
    "notes",
    "notes-1",
  ]);
  assert.deepEqual(links(md), ["docs/operating.md#health-and-metrics"]);
});
