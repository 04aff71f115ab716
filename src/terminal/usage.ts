/** Command-line errors and the shared argument parsing. */

import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in how the command was called: printed as one sentence, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with strict checking, turning its errors into one readable sentence. */
export function parseFlags<O extends Options>(args: string[], options: O, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    const message = (e as Error).message.split(". ")[0].replace(/\.$/, "");
    throw new UsageError(`${message}; see "parley ${command} --help"`);
  }
}

/** Splits "host:port", "[v6]:port" or a bare host (default port). */
export function parseAddress(text: string, defaultPort: number): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:\s]+)(?::(\d+))?$/.exec(text);
  const m = v6 ?? plain;
  if (!m) {
    throw new UsageError(`"${text}" is not an address; use HOST:PORT, for example 127.0.0.1:7070`);
  }
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`Port "${m[2]}" must be a number from 1 to 65535`);
  }
  return { host: m[1], port };
}
