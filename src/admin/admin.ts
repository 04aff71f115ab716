/** `parley admin`: look after a server's data dir from the command line. */

import { UsageError } from "../terminal/usage.ts";
import { DELETE_USER, RESET_PASSWORD } from "./accounts.ts";
import { BACKUP } from "./backup.ts";
import { type AdminCommand, adminContext, commandHelp } from "./command.ts";
import { INVITE } from "./invites.ts";
import { GROUPS, STATS, USERS } from "./listings.ts";
import { RESTORE } from "./restore.ts";

const COMMANDS: AdminCommand[] = [
  USERS,
  GROUPS,
  STATS,
  RESET_PASSWORD,
  DELETE_USER,
  INVITE,
  BACKUP,
  RESTORE,
];

function usageLine(cmd: AdminCommand): string {
  return `${cmd.name}${cmd.args ? ` ${cmd.args}` : ""}`;
}

export const ADMIN_HELP = `Usage: parley admin COMMAND [options]

Looks after a server's data dir (--data DIR, default ./parley-data, as for serve), or a
cluster's store (--cluster URLS).

Commands:
${COMMANDS.map((c) => `  ${usageLine(c).padEnd(22)}${c.summary}`).join("\n")}

users, groups, stats and backup only read, and work while the server runs; so does invite,
which only adds codes the server reads when they are used. reset-password, delete-user and
restore change the store: they refuse while a server runs on the data dir (its caches would
not see the change), and no server can start while they work.
With --cluster nats://HOST:PORT[,...] (or cluster.nats in --config) every command works on the
live cluster's store instead; nothing is stopped (see docs/operating.md).
See "parley admin COMMAND --help" for each command's options.
`;

/** The help for `parley admin` or one of its commands; null for an unknown name. */
export function adminHelp(name?: string): string | null {
  if (name === undefined) return ADMIN_HELP;
  const cmd = COMMANDS.find((c) => c.name === name);
  return cmd ? commandHelp(cmd) : null;
}

export async function admin(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const help = adminHelp(name === "help" ? rest[0] : undefined);
    if (help === null) {
      throw new UsageError(`Unknown admin command "${rest[0]}"; see "parley admin --help"`);
    }
    console.log(help);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) throw new UsageError(`Unknown admin command "${name}"; see "parley admin --help"`);
  const ctx = await adminContext(cmd, rest);
  return ctx ? await cmd.run(ctx) : 0;
}
