/**
 * The web client's files, held in memory: read once at start from src/webapp/static/ (written
 * by hand) and src/webapp/dist/ (made by `deno task web:build`), then served from the table.
 * A request can only name a file that is in it: no path ever reaches the file system.
 */

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";

export interface Asset {
  bytes: Uint8Array;
  contentType: string;
}

/** A file as served: its validator, and its gzip form where that is worth sending. */
export interface ServedAsset extends Asset {
  etag: string;
  /** The same file gzipped, when text and at least an eighth smaller; its ETag differs. */
  gzip?: { bytes: Uint8Array; etag: string };
}

/** Files by URL path ("/index.html"); "/" is not a key (the listener maps it to index.html). */
export interface AssetTable {
  get(path: string): ServedAsset | undefined;
  /** The files the client cannot start without that are absent (a build not made yet). */
  readonly missing: readonly string[];
}

/** Without these the page cannot run: index.html (static/) loads app.js (dist/). */
export const REQUIRED_ASSETS = ["/index.html", "/app.js"];

/** Where the files are read from, in order; a path found in both is an error. */
export const ASSET_DIRS = [
  new URL("../../webapp/static/", import.meta.url),
  new URL("../../webapp/dist/", import.meta.url),
];

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  webmanifest: "application/manifest+json",
  map: "application/json",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  webp: "image/webp",
  woff2: "font/woff2",
  txt: "text/plain; charset=utf-8",
};

/** The Content-Type for a file name; files of other kinds are not served (nosniff). */
export function contentTypeOf(name: string): string | undefined {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? undefined : TYPES[name.slice(dot + 1).toLowerCase()];
}

/** A table over given files (tests, and the loader below). */
export class MemoryAssets implements AssetTable {
  readonly #files: Map<string, ServedAsset>;
  readonly missing: readonly string[];

  constructor(files: Map<string, Asset>) {
    for (const path of files.keys()) {
      if (!path.startsWith("/") || path === "/") throw new Error(`Not an asset path: "${path}"`);
    }
    // Compressed once here: the app's script is about a third of its size gzipped.
    this.#files = new Map([...files].map(([path, asset]) => [path, served(asset)]));
    this.missing = REQUIRED_ASSETS.filter((p) => !files.has(p));
  }

  /** From text or bytes by path, the type taken from each name. */
  static of(files: Record<string, string | Uint8Array>): MemoryAssets {
    const map = new Map<string, Asset>();
    for (const [path, content] of Object.entries(files)) {
      const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
      map.set(path, { bytes, contentType: contentTypeOf(path) ?? "application/octet-stream" });
    }
    return new MemoryAssets(map);
  }

  get(path: string): ServedAsset | undefined {
    return this.#files.get(path);
  }
}

/**
 * Reads every servable file under `dirs` (recursively; a dir that does not exist is skipped:
 * `missing` then says what the page lacks). Files of unknown types are left out.
 */
export async function loadAssets(dirs: URL[] = ASSET_DIRS): Promise<MemoryAssets> {
  const files = new Map<string, Asset>();
  const from = new Map<string, string>();
  const walk = async (dir: URL, prefix: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      if (entry.isDirectory) {
        await walk(new URL(`${encodeURIComponent(entry.name)}/`, dir), `${prefix}${entry.name}/`);
        continue;
      }
      const contentType = contentTypeOf(entry.name);
      if (!entry.isFile || contentType === undefined) continue;
      const path = `${prefix}${entry.name}`;
      const url = new URL(encodeURIComponent(entry.name), dir);
      if (files.has(path)) {
        throw new Error(
          `The web client's file ${path} is in both ${from.get(path)} and ${dir.pathname}`,
        );
      }
      files.set(path, { bytes: await Deno.readFile(url), contentType });
      from.set(path, dir.pathname);
    }
  };
  for (const dir of dirs) await walk(dir, "/");
  return new MemoryAssets(files);
}

/** A strong validator for a file's bytes (its SHA-256, shortened). */
export function etagOf(bytes: Uint8Array): string {
  return `"${createHash("sha256").update(bytes).digest("base64url").slice(0, 22)}"`;
}

/** Types worth compressing: text of every kind (images and fonts are compressed already). */
function compressible(contentType: string): boolean {
  return /^text\/|^application\/(json|manifest\+json)|^image\/svg\+xml/.test(contentType);
}

function served(asset: Asset): ServedAsset {
  const etag = etagOf(asset.bytes);
  if (!compressible(asset.contentType)) return { ...asset, etag };
  const gzipped = new Uint8Array(gzipSync(asset.bytes, { level: 9 }));
  if (gzipped.length > asset.bytes.length * 7 / 8) return { ...asset, etag };
  return { ...asset, etag, gzip: { bytes: gzipped, etag: `${etag.slice(0, -1)}-gz"` } };
}
