/**
 * A minimal static server for tests of page modules on their own (the history store): files
 * from a map, with the same strict CSP as the real server, on a loopback port (a secure context).
 */

export const TEST_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

export function serveFiles(files: Record<string, string>): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname.slice(1) || "index.html";
    const body = files[path];
    if (body === undefined) return new Response("not found", { status: 404 });
    return new Response(body, {
      headers: {
        "content-type": TYPES[path.split(".").pop()!] ?? "application/octet-stream",
        "content-security-policy": TEST_CSP,
      },
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/`, close: () => server.shutdown() };
}

/**
 * Bundles modules of the page for the browser (as `deno task web:build` does) with `exports` set
 * on globalThis, for a test to call them in the page. Built from a temporary entry, so that the
 * type check of tests/ (Deno's types) never takes in the page's DOM types.
 */
export async function bundleExports(exports: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "parley-web-bundle-" });
  try {
    const entry = `${dir}/entry.ts`;
    const names = Object.keys(exports);
    await Deno.writeTextFile(
      entry,
      names.map((n) => `import { ${n} } from ${JSON.stringify(exports[n])};\n`).join("") +
        `Object.assign(globalThis, { ${names.join(", ")} });\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "browser", "-o", `${dir}/out.js`, entry],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
    return await Deno.readTextFile(`${dir}/out.js`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
