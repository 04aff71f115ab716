/** `parley connect HOST:PORT` (and plain `parley`): the interactive terminal client. */

import { Link } from "../client/link.ts";
import { CHAT_HELP, ChatSession, waitsForHandling } from "./chat.ts";
import { ReadAhead } from "./input.ts";
import { History } from "./history.ts";
import {
  ACCEPT_NEW_KEY_ENV,
  acceptNewKeyWanted,
  authenticate,
  CliFailure,
  reach,
  resolveServer,
} from "./login.ts";
import { autosaveBudget, Downloads } from "./downloads.ts";
import { clientDataDir, deviceSecret, downloadsDir, lastUser, rememberUser } from "./paths.ts";
import { sentence, shown, visibleLines } from "../terminal/safe_text.ts";
import { openTerminal, type Terminal } from "../terminal/terminal.ts";
import { parseFlags, UsageError } from "../terminal/usage.ts";

export const CONNECT_HELP = `Usage: parley connect [HOST:PORT[,HOST:PORT…]] [options]
       parley [HOST:PORT[,HOST:PORT…]] [options]

Connects to a Parley server, logs in (or registers) and opens a chat session. The server is
the argument (or --server), else $PARLEY_SERVER, else the last server used. The first time you
reach a server its key fingerprint is shown and you are asked whether to trust it (before any
password is sent); the key is then pinned, and if it later changes, the client refuses to connect.
Several addresses, separated by commas, are the nodes of one cluster: the first that answers is
used, and when it goes away the client resumes the session on another; every node must present
the key pinned for the list.

Options:
  -s, --server ADDRS  The server's address(es), as the argument
  -u, --user NAME     Username (asked for when missing; the last one used on the server is
                      offered)
  --register          Create the account first, then log in
  --invite CODE       The invite code, for a server that takes new accounts by invitation
  --accept-new-key    Trust the key of a server met for the first time without asking
                      (needed when stdin is not a terminal); a changed key is still refused
  -h, --help          Show this help

Environment:
  ${ACCEPT_NEW_KEY_ENV}=1  Same as --accept-new-key
  PARLEY_SERVER       Server address(es) when none is given
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
    server: { type: "string", short: "s" },
    user: { type: "string", short: "u" },
    register: { type: "boolean" },
    invite: { type: "string" },
    "accept-new-key": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "connect");
  if (values.help) {
    console.log(CONNECT_HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError(`"parley connect" takes one address, got ${positionals.length}`);
  }
  if (positionals.length === 1 && values.server !== undefined) {
    throw new UsageError("Give the server as the argument or with --server, not both");
  }
  const server = await resolveServer(positionals[0] ?? values.server);
  // Checked before logging in: a bad setting is a usage mistake.
  const downloads = new Downloads(
    downloadsDir(),
    autosaveBudget(),
    Deno.env.get("PARLEY_DOWNLOADS") === undefined,
  );
  const term = openTerminal();
  const say = (text: string) => term.print(text);
  // Until the chat begins there is nothing to finish: a signal ends the client at once, with the
  // terminal given back (raw mode at the password prompt, left on, hid what the shell echoed).
  const beforeChat = exitOnSignals(() => term.close());
  let link: Link | null = null;
  try {
    const { client, options, at } = await reach(
      server,
      say,
      { acceptNewKey: acceptNewKeyWanted(values["accept-new-key"]), term },
      { autoAck: false, deviceSecret: await deviceSecret() },
    );
    let name: string;
    try {
      name = await authenticate(
        client,
        term,
        {
          user: values.user,
          register: values.register,
          invite: values.invite,
          lastUser: await lastUser(server.addr),
        },
        say,
      );
    } catch (e) {
      client.close();
      throw e;
    }
    await rememberUser(server.addr, name);
    const history = await History.open(clientDataDir(), server.addr, name);
    // history.seen holds the ids already stored, so a redelivery shows nothing twice.
    link = new Link({ ...options, seen: history.seen }, {
      // Reasons in it (a kick, a failed connection) can come from the server.
      status: (text) => term.print(sentence(text)),
      event: (m) => chat.onEvent(m),
    });
    const chat = new ChatSession(link, term, history, name, downloads);
    // With several addresses, the node this connection went to.
    const where = server.all.length > 1 ? client.address : server.addr;
    say(shown`Logged in as ${name} on ${where}. Type /help for commands.`);
    term.setPrompt("> ");
    link.open(client, at);
    beforeChat.stop();
    return await loop(chat, link, term);
  } catch (e) {
    if (e instanceof CliFailure) {
      term.close();
      console.error(`parley: ${sentence(e.message)}`);
      return 1;
    }
    if (e instanceof Deno.errors.Interrupted) return 130;
    throw e;
  } finally {
    beforeChat.stop();
    link?.close();
    term.close();
  }
}

/** Exits with 128 + the signal's number on any of QUIT_SIGNALS, after `cleanup`; until stop(). */
function exitOnSignals(cleanup: () => void): { stop(): void } {
  return onQuitSignals((signal) => {
    cleanup();
    Deno.exit(128 + signal);
  });
}

/** Calls `handle` with the signal's number on any of QUIT_SIGNALS, until stop(). */
function onQuitSignals(handle: (signal: number) => void): { stop(): void } {
  const handlers = QUIT_SIGNALS.map(([signal, number]) => {
    const handler = () => handle(number);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    },
  };
}

/** Reads and handles lines until /quit, end of input, Ctrl-C or the link ending for good. */
async function loop(chat: ChatSession, link: Link, term: Terminal): Promise<number> {
  let kicked = false;
  const ended = link.ended.then((reason) => {
    kicked = reason.startsWith("Kicked");
    return reason;
  });
  // Lines are read ahead, stamped with when they were entered, and handled in order: a line
  // typed while /to waits goes where /to leads, and not at all if it fails (ChatSession.handle).
  const lines = new ReadAhead(term, waitsForHandling, (yes) => {
    if (yes) term.setPrompt("... ");
    else chat.restorePrompt();
  });
  const handled = (async () => {
    while (true) {
      const line = await lines.next();
      if (line === "eof") return "eof";
      if (!await chat.handle(line.text, line.at)) return "quit";
    }
  })();
  const input = Promise.race([handled, lines.interrupted]);
  // SIGINT comes when stdin is not a terminal (a terminal in raw mode gives Ctrl-C as a key),
  // SIGTERM from `kill`, SIGHUP when the terminal closes: each is caught, so that leaving finishes
  // the message being recorded and gives the terminal back as it was (raw mode left on, a shell
  // showed nothing typed) instead of dying halfway.
  let listening = { stop() {} };
  const signalled = new Promise<{ signal: number }>((resolve) => {
    listening = onQuitSignals((signal) => resolve({ signal }));
  });
  try {
    const first = await Promise.race([input, signalled, ended.then((r) => ({ ended: r }))]);
    if (typeof first === "object" && "signal" in first) {
      leftUnread(term, lines);
      await chat.interrupt();
      return 128 + first.signal;
    }
    if (typeof first === "object") {
      leftUnread(term, lines);
      if (!kicked && first.ended !== "Closed") console.error(`parley: ${sentence(first.ended)}`);
      return 1;
    }
    if (first === "interrupted") {
      leftUnread(term, lines);
      await chat.interrupt();
      return 130;
    }
    await chat.drain();
    return 0;
  } finally {
    listening.stop();
  }
}

/** Says, whole, each message typed ahead that quitting leaves unsent (commands are dropped). */
function leftUnread(term: Terminal, lines: ReadAhead): void {
  for (const { text } of lines.pending()) {
    if (text.trim() === "" || text.startsWith("/")) continue;
    term.print(
      `Not sent: "${visibleLines(text)}" (typed before quitting, while a command waited).`,
    );
  }
}

/** The signals that end a chat as Ctrl-C does, with their numbers (the exit status is 128 + it). */
const QUIT_SIGNALS: [Deno.Signal, number][] = [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]];
