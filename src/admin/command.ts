/**
 * What every `parley admin` command shares: its shape, the --data/--config/--help flags, and
 * the effective configuration built the way `parley serve` builds it (defaults, then the
 * --config file, then --data), so that both agree on the data dir and the account settings.
 */

import type { ParseArgsConfig } from "node:util";
import { resolve } from "node:path";
import { parseClusterUrls } from "../cluster/connect.ts";
import { applyConfig, type Config, defaultConfig, loadConfigFile } from "../config/config.ts";
import { parseFlags, UsageError } from "../terminal/usage.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface AdminContext {
  config: Config;
  /** The data dir, absolute. */
  dataDir: string;
  /**
   * The cluster's settings when the command works on a cluster's NATS store (--cluster, or
   * `cluster.nats` in the --config file); null for the data dir's KV store.
   */
  cluster: Config["cluster"] | null;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface AdminCommand {
  name: string;
  /** "NAME" or "FILE": the positional arguments, for the usage line. */
  args: string;
  /** One line for `parley admin --help`. */
  summary: string;
  /** What the command does, for its own --help. */
  description: string;
  options: Options;
  /** Help lines for `options`. */
  optionHelp: string[];
  /** Positional arguments it takes. */
  arity: number;
  run(ctx: AdminContext): Promise<number>;
}

const COMMON: Options = {
  data: { type: "string" },
  config: { type: "string" },
  cluster: { type: "string" },
  prefix: { type: "string" },
  help: { type: "boolean", short: "h" },
};

const COMMON_HELP = [
  "--data DIR          The server's data directory (default ./parley-data, as for serve)",
  "--config FILE       The server's settings file, if it has one (scrypt cost, password length)",
  "--cluster URLS      Work on a cluster's store in NATS (nats://HOST:PORT,...), live: see",
  "                    docs/operating.md; also when the --config file sets cluster.nats",
  '--prefix NAME       The cluster\'s prefix (default cluster.prefix, "parley")',
  "-h, --help          Show this help",
];

export function commandHelp(cmd: AdminCommand): string {
  const usage = `Usage: parley admin ${cmd.name}${cmd.args ? ` ${cmd.args}` : ""} [options]`;
  const lines = [...cmd.optionHelp, ...COMMON_HELP].map((l) => `  ${l}`);
  return `${usage}\n\n${cmd.description}\n\nOptions:\n${lines.join("\n")}\n`;
}

/** Parses the command line; null when --help was asked for (and printed). */
export async function adminContext(
  cmd: AdminCommand,
  args: string[],
): Promise<AdminContext | null> {
  const { values, positionals } = parseFlags(
    args,
    { ...COMMON, ...cmd.options },
    `admin ${cmd.name}`,
  );
  if (values.help) {
    console.log(commandHelp(cmd));
    return null;
  }
  if (positionals.length !== cmd.arity) {
    throw new UsageError(
      cmd.arity === 0
        ? `"parley admin ${cmd.name}" takes no argument "${positionals[0]}"`
        : `"parley admin ${cmd.name}" needs ${cmd.args}; see "parley admin ${cmd.name} --help"`,
    );
  }
  let config = defaultConfig();
  if (typeof values.config === "string") config = await loadConfigFile(config, values.config);
  if (typeof values.data === "string") {
    config = applyConfig(config, { dataDir: values.data }, "Flags");
  }
  const cluster: Record<string, unknown> = {};
  if (typeof values.cluster === "string") {
    try {
      cluster.nats = parseClusterUrls(values.cluster);
    } catch (e) {
      throw new UsageError(`--cluster: ${(e as Error).message}`);
    }
  }
  if (typeof values.prefix === "string") cluster.prefix = values.prefix;
  if (Object.keys(cluster).length > 0) config = applyConfig(config, { cluster }, "Flags");
  if (values.prefix !== undefined && config.cluster.nats.length === 0) {
    throw new UsageError("--prefix names a cluster's store: give --cluster too");
  }
  return {
    config,
    dataDir: resolve(config.dataDir),
    cluster: config.cluster.nats.length > 0 ? config.cluster : null,
    values: values as AdminContext["values"],
    positionals,
  };
}

/** True when a person can answer prompts. */
export function interactive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
}
