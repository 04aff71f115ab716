/**
 * Parley: one executable for the server (`parley serve`), its upkeep (`parley admin`) and the
 * terminal client (`parley connect HOST:PORT`, the default).
 */

import { admin, adminHelp } from "./src/admin/admin.ts";
import { ConfigError } from "./src/config/config.ts";
import { chooseAesGcm } from "./src/crypto/aes_gcm.ts";
import { connect, CONNECT_HELP } from "./src/cli/connect.ts";
import { send, SEND_HELP } from "./src/cli/send.ts";
import { sentence } from "./src/terminal/safe_text.ts";
import { serve, SERVE_HELP } from "./src/cli/serve.ts";
import { UsageError } from "./src/terminal/usage.ts";
import { VERSION } from "./src/version.ts";

const HELP = `Parley ${VERSION}: a self-hosted, encrypted chat server and its terminal client.

Usage:
  parley serve [options]              Run the server (see "parley serve --help")
  parley connect HOST:PORT [options]  Chat from the terminal (see "parley connect --help")
  parley [HOST:PORT]                  Same as "parley connect" (last server if none given)
  parley send --to NAME TEXT          Send one message from a script (see "parley send --help")
  parley admin COMMAND [options]      Users, groups, stats, backup and restore of a data dir
                                      (see "parley admin --help")
  parley --version                    Print the version
  parley --help                       Show this help
`;

export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  // The server chooses by its config; every other command seals with OpenSSL where it can, and
  // gives up the FFI permission here either way.
  if (command !== "serve") chooseAesGcm(true);
  try {
    switch (command) {
      case "serve":
        return await serve(rest);
      case "connect":
        return await connect(rest);
      case "send":
        return await send(rest);
      case "admin":
        return await admin(rest);
      case "help":
        console.log(
          rest[0] === "serve"
            ? SERVE_HELP
            : rest[0] === "connect"
            ? CONNECT_HELP
            : rest[0] === "send"
            ? SEND_HELP
            : rest[0] === "admin"
            ? adminHelp(rest[1]) ?? adminHelp()
            : HELP,
        );
        return 0;
      case "--help":
      case "-h":
        console.log(HELP);
        return 0;
      case "--version":
      case "-V":
        console.log(`parley ${VERSION}`);
        return 0;
      case undefined:
        return await connect([]);
      default:
        if (command.startsWith("-")) return await connect(args);
        if (/^[\w.\-\[\]:,]+$/.test(command) && !/^[a-z]+$/.test(command)) {
          return await connect(args);
        }
        throw new UsageError(`Unknown command "${command}"; see "parley --help"`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      console.error(`parley: ${e.message}`);
      return 2;
    }
    if (e instanceof Deno.errors.AddrInUse) {
      console.error(`parley: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      console.error(`parley: permission denied: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.Interrupted) return 130;
    // The message can quote the network (a server's error): its controls are escaped.
    console.error(`parley: ${sentence(e instanceof Error ? e.message : String(e))}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
