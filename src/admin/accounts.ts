/**
 * The commands that change accounts: reset-password and delete-user. They open the store the
 * way the server does, which takes the data dir's lock: while a server runs they refuse (its
 * caches would not see the change), and while they work no server can start. Every change
 * goes through the store's own functions, so the same rules hold as for the server's handlers
 * (a group left empty goes, image blobs go with their last reference).
 *
 * On a cluster (--cluster) they work on the live store instead (cluster.ts: the nodes cache
 * nothing a change could leave stale), and then end the user's sessions on every node.
 */

import { shown } from "../terminal/safe_text.ts";
import { UsageError } from "../terminal/usage.ts";
import { PlainTerminal, type Terminal, TtyTerminal } from "../terminal/terminal.ts";
import { PasswordHasher } from "../crypto/password.ts";
import { usernameKey } from "../protocol/names.ts";
import { openKvStore } from "../store/kv_store.ts";
import type { Store, UserRecord } from "../store/types.ts";
import { type AdminCommand, type AdminContext, interactive } from "./command.ts";
import { endSessions, withClusterStore } from "./cluster.ts";
import { requireStore } from "./data_dir.ts";
import { bytes, plural } from "./text.ts";

/** Ends a user's live sessions (on a cluster; a KV store's server is stopped). */
type EndSessions = (user: string, reason: string) => Promise<void>;

async function withStore<T>(
  ctx: AdminContext,
  command: string,
  fn: (store: Store, end: EndSessions) => Promise<T>,
): Promise<T> {
  const cluster = ctx.cluster;
  if (cluster) {
    return await withClusterStore(
      ctx,
      cluster,
      command,
      (store, nc) => fn(store, (user, reason) => endSessions(nc, cluster.prefix, user, reason)),
    );
  }
  await requireStore(ctx.dataDir);
  const store = await openKvStore(ctx.dataDir, {
    worldBacklog: ctx.config.world.backlog,
    owner: `admin ${command}`,
  });
  try {
    return await fn(store, () => Promise.resolve());
  } finally {
    await store.close();
  }
}

async function findUser(store: Store, name: string): Promise<UserRecord> {
  const record = await store.users.get(name);
  if (!record) throw new Error(`There is no user named "${name}"`);
  return record;
}

/** With a person at the terminal: a TTY line editor for the question, closed afterwards. */
async function ask<T>(fn: (term: Terminal) => Promise<T>): Promise<T> {
  const term = new TtyTerminal();
  try {
    return await fn(term);
  } finally {
    term.close();
  }
}

async function newPassword(ctx: AdminContext, name: string): Promise<string> {
  let password: string | null;
  if (ctx.values["password-stdin"]) {
    password = await new PlainTerminal().readLine();
    if (!password) throw new Error("No password on stdin");
  } else {
    password = await ask(async (term) => {
      const first = await term.readSecret(shown`New password for ${name}: `);
      if (first === null) return null;
      const again = await term.readSecret("Repeat it: ");
      if (again !== first) throw new Error("The passwords do not match; nothing changed");
      return first;
    });
    if (password === null) throw new Error("No password given; nothing changed");
  }
  const min = ctx.config.accounts.minPasswordLength;
  if ([...password].length < min) {
    throw new Error(`Passwords need at least ${min} characters; nothing changed`);
  }
  return password;
}

export const RESET_PASSWORD: AdminCommand = {
  name: "reset-password",
  args: "NAME",
  summary: "Set a user's password and revoke their resume tokens",
  description:
    "Sets a new password for NAME, hashed with the configured scrypt cost (pass the server's\n" +
    "--config if it has one), and revokes all of the user's resume tokens, so every device\n" +
    "must log in again with the new password. The password is asked for twice on a terminal;\n" +
    "otherwise give --password-stdin and the password as the first line of stdin.\n" +
    "The server must be stopped; with --cluster the cluster runs on, and the user's sessions\n" +
    "on every node are ended.",
  options: { "password-stdin": { type: "boolean" } },
  optionHelp: ["--password-stdin    Read the password from the first line of stdin"],
  arity: 1,
  async run(ctx) {
    const [name] = ctx.positionals;
    if (!ctx.values["password-stdin"] && !interactive()) {
      throw new UsageError(
        "No terminal to ask for the password; pass --password-stdin and the password on stdin",
      );
    }
    return await withStore(ctx, "reset-password", async (store, end) => {
      const record = await findUser(store, name);
      const password = await newPassword(ctx, record.name);
      const { accounts } = ctx.config;
      const hasher = new PasswordHasher({ params: accounts.scrypt, concurrency: 1, queue: 1 });
      await store.users.setPassword(record.name, await hasher.hash(password));
      await store.tokens.revokeAll(usernameKey(record.name));
      await end(
        usernameKey(record.name),
        `The password of "${record.name}" was changed; log in with the new one`,
      );
      console.log(
        shown`New password set for ${record.name}; their resume tokens are revoked, so every ` +
          `device logs in again with it.`,
      );
      return 0;
    });
  },
};

export const DELETE_USER: AdminCommand = {
  name: "delete-user",
  args: "NAME",
  summary: "Delete a user with their friendships, memberships and queued messages",
  description:
    "Deletes NAME's account: their friendships (from both sides), their group memberships (a\n" +
    "group left with no member is deleted), the messages waiting for them (with stored images\n" +
    "no one else is waiting for) and their resume tokens. Messages they sent that others have\n" +
    "not received yet stay queued for those others. Asks for the name again on a terminal;\n" +
    "otherwise --yes is required. The server must be stopped; with --cluster the cluster\n" +
    "runs on, and the user's sessions on every node are ended.",
  options: { yes: { type: "boolean", short: "y" } },
  optionHelp: ["-y, --yes           Do not ask; required when stdin is not a terminal"],
  arity: 1,
  async run(ctx) {
    const [name] = ctx.positionals;
    const yes = ctx.values.yes === true;
    if (!yes && !interactive()) {
      throw new UsageError("No terminal to confirm on; pass --yes to delete without asking");
    }
    return await withStore(ctx, "delete-user", async (store, end) => {
      const record = await findUser(store, name);
      const user = usernameKey(record.name);
      const friends = await store.friends.list(user);
      const groups = await store.groups.groupsOf(user);
      const queued = await store.inbox.stats(user);
      const what = `${plural(friends.length, "friend")}, ${plural(groups.length, "group")}, ` +
        `${plural(queued.count, "queued message")} (${bytes(queued.bytes)})`;
      if (!yes) {
        const answer = await ask((term) => {
          term.print(shown`${record.name} has ${what}.`);
          term.setPrompt(
            shown`Type "${record.name}" to delete the account, anything else to keep it: `,
          );
          return term.readLine();
        });
        if (answer?.trim() !== record.name) {
          console.log("Nothing deleted.");
          return 1;
        }
      }
      // On a cluster, sessions end before (so that none adds a friend back meanwhile) and
      // after (one that logged in again meanwhile; no login finds the account then).
      const reason = `The account "${record.name}" was deleted`;
      await store.tokens.revokeAll(user);
      await end(user, reason);
      // The record goes last: an interrupted run can be repeated and finishes the job.
      for (const f of friends) await store.friends.remove(user, f.user);
      // Nothing waits for or against a name that may be registered again by someone else.
      await store.friends.clearRequests(user);
      await store.blocks.clear(user);
      await store.invitations.clear(user);
      const emptied: string[] = [];
      for (const g of groups) {
        const left = await store.groups.removeMember(g.id, user);
        if (left.length === 0) emptied.push(shown`#${g.id} ${g.name}`);
      }
      await store.inbox.clear(user);
      await store.users.remove(user);
      await end(user, reason);
      const gone = emptied.length === 0
        ? ""
        : `; ${plural(emptied.length, "group")} left empty and deleted: ${emptied.join(", ")}`;
      console.log(shown`Deleted ${record.name} with ${what}` + gone + ".");
      return 0;
    });
  },
};
