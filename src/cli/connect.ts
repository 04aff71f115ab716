/**
 * `parley connect HOST:PORT`: log in (or register) and keep a small command session.
 * The conversation commands arrive with the terminal client; this is the account part.
 */

import { ConnectionClosedError, ParleyClient } from "../client/client.ts";
import { HostKeyChangedError, KnownHosts } from "../client/known_hosts.ts";
import { errorCodeName, HandshakeError, ParleyError } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import { usernameProblem } from "../protocol/names.ts";
import { LineReader, print } from "./input.ts";
import { knownHostsPath } from "./paths.ts";
import { parseAddress, parseFlags, UsageError } from "./usage.ts";

export const DEFAULT_PORT = 7070;

export const CONNECT_HELP = `Usage: parley connect HOST:PORT [options]

Connects to a Parley server, logs in (or registers with --register) and opens a command
session. The first time you reach a server its key fingerprint is shown and pinned; if the
key later changes, the client refuses to connect.

Options:
  -u, --user NAME   Username (asked for when missing)
  --register        Create the account first, then log in
  -h, --help        Show this help

Environment:
  PARLEY_SERVER       Server address when none is given
  PARLEY_PASSWORD     Password, for scripts (otherwise asked for, hidden on a terminal;
                      read as a line from stdin when stdin is not a terminal)
  PARLEY_CONFIG_DIR   Where pinned server keys live (default ~/.config/parley)

Commands once logged in:
  /help             List commands
  /whoami           Show who you are logged in as
  /ping             Measure the round trip to the server
  /passwd           Change your password
  /logout           Log out and quit
  /quit             Quit (stays logged in for a resume)
`;

const SESSION_HELP = `Commands: /whoami  /ping  /passwd  /logout  /quit  /help`;

export async function connect(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    user: { type: "string", short: "u" },
    register: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "connect");
  if (values.help) {
    print(CONNECT_HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError(`"parley connect" takes one address, got ${positionals.length}`);
  }
  const target = positionals[0] ?? Deno.env.get("PARLEY_SERVER");
  if (!target) throw new UsageError('Give a server address: "parley connect HOST:PORT"');
  const { host, port } = parseAddress(target, DEFAULT_PORT);
  const lines = new LineReader();

  let client: ParleyClient;
  try {
    client = await ParleyClient.connect({
      host,
      port,
      knownHosts: new KnownHosts(knownHostsPath()),
    });
  } catch (e) {
    return fail(connectProblem(e, `${host}:${port}`));
  }
  if (client.firstContact) {
    print(
      `First contact with ${host}:${port}. Its key fingerprint is ${client.fingerprint}; pinned.\n`,
    );
  }

  try {
    const name = values.user ?? await lines.prompt("Username: ");
    if (!name) return fail("No username given");
    const problem = usernameProblem(name);
    if (problem) return fail(problem);
    const password = Deno.env.get("PARLEY_PASSWORD") ?? await lines.password("Password: ");
    if (password === null) return fail("No password given");
    if (values.register) {
      if (Deno.stdin.isTerminal() && !Deno.env.get("PARLEY_PASSWORD")) {
        const again = await lines.password("Repeat password: ");
        if (again !== password) return fail("The passwords do not match");
      }
      const created = await client.register(name, password);
      print(`Registered ${created}.\n`);
    }
    const me = await client.login(name, password);
    print(`Logged in as ${me.username}. Type /help for commands.\n`);
    return await commandLoop(client, lines, me.username);
  } catch (e) {
    if (e instanceof ParleyError) return fail(e.message);
    if (e instanceof ConnectionClosedError) return fail(e.message);
    throw e;
  } finally {
    client.close();
  }
}

async function commandLoop(
  client: ParleyClient,
  lines: LineReader,
  username: string,
): Promise<number> {
  let kicked = false;
  // Pushes print as they come; a KICK or a shutdown notice ends the session.
  const pushes = (async () => {
    for await (const push of client.events()) {
      if (push.type === MsgType.KICK) {
        kicked = true;
        print(`\n${(push.body as { reason: string }).reason}. This session has ended.\n`);
      } else if (push.type === MsgType.GENERAL_ERROR) {
        print(`\nServer: ${(push.body as { message: string }).message}\n`);
      }
    }
  })();
  const input = (async () => {
    while (true) {
      const line = await lines.next();
      if (line === null) return "eof";
      const word = line.trim();
      if (word === "") continue;
      if (word === "/quit") return "quit";
      if (word === "/logout") {
        await client.logout();
        print(`Logged out ${username}.\n`);
        return "quit";
      }
      if (word === "/help") print(SESSION_HELP + "\n");
      else if (word === "/whoami") print(`${username}\n`);
      else if (word === "/ping") print(`pong in ${(await client.ping()).toFixed(1)} ms\n`);
      else if (word === "/passwd") await changePassword(client, lines);
      else if (word.startsWith("/")) {
        print(`Unknown command ${word.split(" ")[0]}. ${SESSION_HELP}\n`);
      } else print("Chat messages are not part of this version yet. " + SESSION_HELP + "\n");
    }
  })();
  try {
    const first = await Promise.race([input, pushes.then(() => "closed")]);
    if (first === "closed") return kicked ? 1 : fail(`Disconnected: ${await client.closed}`);
    return 0;
  } catch (e) {
    if (e instanceof ConnectionClosedError) return fail(e.message);
    if (e instanceof ParleyError) return fail(e.message);
    throw e;
  }
}

async function changePassword(client: ParleyClient, lines: LineReader): Promise<void> {
  const current = await lines.password("Current password: ");
  const next = await lines.password("New password: ");
  if (current === null || next === null) return;
  try {
    await client.changePassword(current, next);
    print("Password changed. Other devices must log in again.\n");
  } catch (e) {
    if (!(e instanceof ParleyError)) throw e;
    print(`Password not changed: ${e.message} (${errorCodeName(e.code)}).\n`);
  }
}

function connectProblem(e: unknown, addr: string): string {
  if (e instanceof HostKeyChangedError) return e.message;
  if (e instanceof HandshakeError) return `Cannot talk to ${addr}: ${e.message}`;
  if (e instanceof Deno.errors.ConnectionRefused) return `No Parley server is listening at ${addr}`;
  if (e instanceof Error) return `Cannot connect to ${addr}: ${e.message}`;
  return `Cannot connect to ${addr}`;
}

function fail(message: string): number {
  Deno.stderr.writeSync(new TextEncoder().encode(`parley: ${message}\n`));
  return 1;
}
