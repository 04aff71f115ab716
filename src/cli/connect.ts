/** `parley connect HOST:PORT` (and plain `parley`): the interactive terminal client. */

import { Link } from "../client/link.ts";
import { CHAT_HELP, ChatSession } from "./chat.ts";
import { History } from "./history.ts";
import { authenticate, CliFailure, reach, resolveServer } from "./login.ts";
import { autosaveBudget, Downloads } from "./downloads.ts";
import { clientDataDir, deviceSecret, downloadsDir } from "./paths.ts";
import { shown, visible } from "./safe_text.ts";
import { openTerminal } from "./terminal.ts";
import { parseFlags, UsageError } from "./usage.ts";

export const CONNECT_HELP = `Usage: parley connect [HOST:PORT] [options]
       parley [HOST:PORT] [options]

Connects to a Parley server, logs in (or registers) and opens a chat session. The server is
the argument, else $PARLEY_SERVER, else the last server used. The first time you reach a
server its key fingerprint is shown and pinned; if the key later changes, the client refuses
to connect.

Options:
  -u, --user NAME   Username (asked for when missing)
  --register        Create the account first, then log in
  --invite CODE     The invite code, for a server that takes new accounts by invitation
  -h, --help        Show this help

Environment:
  PARLEY_SERVER       Server address when none is given
  PARLEY_PASSWORD     Password, for scripts (otherwise asked for, hidden on a terminal;
                      read as the first line of stdin when stdin is not a terminal)
  PARLEY_CONFIG_DIR   Pinned server keys and the last server (default ~/.config/parley)
  PARLEY_DATA_DIR     Local history (default ~/.local/share/parley)
  PARLEY_DOWNLOADS    Received images and files (default <data dir>/downloads)
  PARLEY_AUTOSAVE_MIB Images from friends saved without asking per session (default 50);
                      others wait for /save N
  NO_COLOR            No colours even on a terminal

${CHAT_HELP}
`;

export async function connect(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    user: { type: "string", short: "u" },
    register: { type: "boolean" },
    invite: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, "connect");
  if (values.help) {
    console.log(CONNECT_HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError(`"parley connect" takes one address, got ${positionals.length}`);
  }
  const server = await resolveServer(positionals[0]);
  // Checked before logging in: a bad setting is a usage mistake.
  const downloads = new Downloads(
    downloadsDir(),
    autosaveBudget(),
    Deno.env.get("PARLEY_DOWNLOADS") === undefined,
  );
  const term = openTerminal();
  const say = (text: string) => term.print(text);
  let link: Link | null = null;
  try {
    const { client, options } = await reach(server, say, {
      autoAck: false,
      deviceSecret: await deviceSecret(),
    });
    let name: string;
    try {
      name = await authenticate(
        client,
        term,
        { user: values.user, register: values.register, invite: values.invite },
        say,
      );
    } catch (e) {
      client.close();
      throw e;
    }
    const history = await History.open(clientDataDir(), server.addr, name);
    // history.seen holds the ids already stored, so a redelivery shows nothing twice.
    link = new Link({ ...options, seen: history.seen }, {
      // Reasons in it (a kick, a failed connection) can come from the server.
      status: (text) => term.print(visible(text)),
      event: (m) => chat.onEvent(m),
    });
    const chat = new ChatSession(link, term, history, name, downloads);
    say(shown`Logged in as ${name} on ${server.addr}. Type /help for commands.`);
    term.setPrompt("> ");
    link.open(client);
    return await loop(chat, link, term);
  } catch (e) {
    if (e instanceof CliFailure) {
      term.close();
      console.error(`parley: ${visible(e.message)}`);
      return 1;
    }
    throw e;
  } finally {
    link?.close();
    term.close();
  }
}

async function loop(
  chat: ChatSession,
  link: Link,
  term: ReturnType<typeof openTerminal>,
): Promise<number> {
  let kicked = false;
  const ended = link.ended.then((reason) => {
    kicked = reason.startsWith("Kicked");
    return reason;
  });
  const input = (async () => {
    let pending = "";
    while (true) {
      const line = await term.readLine();
      if (line === null) return "eof";
      // A trailing backslash continues the message on the next line.
      if (line.endsWith("\\") && !line.startsWith("/")) {
        pending += line.slice(0, -1) + "\n";
        term.setPrompt("... ");
        continue;
      }
      const full = pending + line;
      if (pending) chat.restorePrompt();
      pending = "";
      if (!await chat.handle(full)) return "quit";
    }
  })();
  const first = await Promise.race([input, ended.then((r) => ({ ended: r }))]);
  if (typeof first === "object") {
    if (!kicked && first.ended !== "Closed") console.error(`parley: ${visible(first.ended)}`);
    return 1;
  }
  await chat.drain();
  return 0;
}
