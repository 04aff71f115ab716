/**
 * `deno task compile`: builds the single `parley` executable (server and client in one file,
 * config defaults embedded through the JSON import in src/config/config.ts).
 *
 *   deno task compile                 this machine's platform → dist/parley
 *   deno task compile --all           every release target → dist/parley-<target>
 *   deno task compile --target T      one target
 *   deno task compile --dry-run ...   print the commands instead of running them
 *
 * `deno compile` downloads the `denort` runtime for each target on first use, so it needs
 * network access to Deno's download server.
 */

import { parseArgs } from "node:util";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ASSET_DIRS } from "../src/server/web/assets.ts";
import { V8_FLAGS_ARG } from "../src/server/v8_flags.ts";

export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
] as const;

/** What the binary may do: serve and connect over TCP, keep files, read its environment. */
export const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

/**
 * Linux builds may also load the system's libcrypto for AES-GCM (src/crypto/aes_gcm.ts), a
 * permission the process gives up once it has; elsewhere node:crypto is used and none is needed.
 */
export function permissionsFor(target: string | null): string[] {
  const os = target ? (target.includes("-linux-") ? "linux" : "other") : Deno.build.os;
  return os === "linux" ? [...PERMISSIONS, "--allow-ffi"] : PERMISSIONS;
}

/**
 * The web client's files, which the server reads at start (src/server/web/assets.ts): not
 * imported, so `deno compile` leaves them out unless told, as paths relative to the repository.
 */
export function webAssetIncludes(): string[] {
  const root = fileURLToPath(new URL("../", import.meta.url));
  return ASSET_DIRS.flatMap((dir) => ["--include", relative(root, fileURLToPath(dir))]);
}

/** The `deno compile` arguments for one build. */
export function compileArgs(target: string | null): string[] {
  const output = target ? `dist/parley-${target}` : "dist/parley";
  return [
    "compile",
    "--unstable-kv",
    V8_FLAGS_ARG,
    ...permissionsFor(target),
    ...webAssetIncludes(),
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    "main.ts",
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      all: { type: "boolean" },
      target: { type: "string", multiple: true },
      "dry-run": { type: "boolean" },
    },
    strict: true,
  });
  for (const t of values.target ?? []) {
    if (!(TARGETS as readonly string[]).includes(t)) {
      console.error(`compile: unknown target "${t}"; known: ${TARGETS.join(", ")}`);
      Deno.exit(2);
    }
  }
  const targets: (string | null)[] = values.all ? [...TARGETS] : values.target ?? [null];
  for (const target of targets) {
    const args = compileArgs(target);
    console.log(`deno ${args.join(" ")}`);
    if (values["dry-run"]) continue;
    const { code } = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "inherit",
      stderr: "inherit",
    })
      .output();
    if (code !== 0) Deno.exit(code);
  }
}
