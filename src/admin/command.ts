/**
 * What every `parley admin` command shares: its shape, the --data/--config/--help flags, and
 * the effective configuration built the way `parley serve` builds it (defaults, then the
 * --config file, then --data), so that both agree on the data dir and the account settings.
 */

import type { ParseArgsConfig } from "node:util";
import { resolve } from "node:path";
import { applyConfig, type Config, defaultConfig, loadConfigFile } from "../config/config.ts";
import { parseFlags, UsageError } from "../terminal/usage.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface AdminContext {
  config: Config;
  /** The data dir, absolute. */
  dataDir: string;
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
  help: { type: "boolean", short: "h" },
};

const COMMON_HELP = [
  "--data DIR          The server's data directory (default ./parley-data, as for serve)",
  "--config FILE       The server's settings file, if it has one (scrypt cost, password length)",
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
  return {
    config,
    dataDir: resolve(config.dataDir),
    values: values as AdminContext["values"],
    positionals,
  };
}

/** True when a person can answer prompts. */
export function interactive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
}
