/**
 * `parley admin invite`: one-time codes for `accounts.registration: "invite"`. It writes to
 * the KV file directly, beside a running server if there is one: the server keeps no copy of
 * the codes, and KV's atomic commits hold across processes, so a code is used at most once.
 * On a cluster the codes go into its invites bucket, beside the live nodes, the same way.
 */

import { UsageError } from "../terminal/usage.ts";
import { KvInviteStore, newInviteCode } from "../store/invites.ts";
import type { AdminCommand } from "./command.ts";
import type { InviteStore } from "../store/types.ts";
import { withClusterStore } from "./cluster.ts";
import { openExistingKv } from "./data_dir.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Codes made at once, at most: enough for a class or a team, not a list to leak. */
const MAX_COUNT = 1000;
const MAX_DAYS = 365;

function whole(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`--${name} must be a whole number from 1 to ${max}, got "${value}"`);
  }
  return n;
}

export const INVITE: AdminCommand = {
  name: "invite",
  args: "",
  summary: "Make one-time invite codes for registration",
  description:
    'Prints new invite codes, one a line. With accounts.registration set to "invite", REGISTER\n' +
    "needs one (the terminal client asks for it); each code makes one account and expires\n" +
    "after --days. Works while the server runs. Only the codes' hashes are stored, so keep\n" +
    "the printed codes until you hand them out.",
  options: { count: { type: "string", short: "n" }, days: { type: "string" } },
  optionHelp: [
    `-n, --count N       How many codes (default 1, at most ${MAX_COUNT})`,
    `--days D            Days each code stays valid (default 7, at most ${MAX_DAYS})`,
  ],
  arity: 0,
  async run(ctx) {
    const count = whole(ctx.values.count, "count", 1, MAX_COUNT);
    const days = whole(ctx.values.days, "days", 7, MAX_DAYS);
    const add = async (invites: InviteStore) => {
      let expires: Date | null = null;
      for (let i = 0; i < count; i++) {
        const code = newInviteCode();
        expires = (await invites.add(code, days * DAY_MS)).expires;
        console.log(code);
      }
      return expires!;
    };
    let expires: Date;
    if (ctx.cluster) {
      expires = await withClusterStore(ctx, ctx.cluster, "invite", (store) => add(store.invites));
    } else {
      const kv = await openExistingKv(ctx.dataDir);
      try {
        expires = await add(new KvInviteStore(kv));
      } finally {
        kv.close();
      }
    }
    const mode = ctx.config.accounts.registration;
    console.error(
      `${count === 1 ? "One code" : `${count} codes`}, valid until ` +
        `${expires.toISOString().slice(0, 16).replace("T", " ")} UTC.` +
        (mode === "invite" ? "" : ` Note: accounts.registration is "${mode}" in this ` +
          `config; codes are asked for only when it is "invite".`),
    );
    return 0;
  },
};
