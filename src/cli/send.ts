/** `parley send`: one message from a script; exit code 0 only once the server acknowledged it. */

import type { Target } from "../client/client.ts";
import { DEFAULT_LIMITS, imageProblem, maxImageBytes, textProblem } from "../client/outgoing.ts";
import { readImageFile } from "./local_file.ts";
import { ParleyError } from "../protocol/errors.ts";
import {
  ACCEPT_NEW_KEY_ENV,
  acceptNewKeyWanted,
  authenticate,
  CliFailure,
  reach,
  resolveServer,
} from "./login.ts";
import { sentence, shown } from "../terminal/safe_text.ts";
import { openTerminal, type Terminal } from "../terminal/terminal.ts";
import { parseFlags, UsageError } from "../terminal/usage.ts";

export const SEND_HELP = `Usage: parley send (--to NAME | --group ID | --world) [options] [TEXT...]

Sends one message and exits: 0 once the server has acknowledged it (it is then stored until
delivered), 1 if it was refused or could not be sent, 2 for a usage mistake. Without TEXT the
message is read from stdin (all of it, multi-line). An image is sent with --image PATH.

Options:
  --to NAME          Private message to a user
  --group ID         Message to a group you are in
  --world            Message to the world room
  --image PATH       Send this image instead of text
  -s, --server ADDR  Server (default $PARLEY_SERVER, else the last server \`parley connect\`
                     used; send does not change it); several addresses of one cluster's
                     nodes, separated by commas, are tried in order
  -u, --user NAME    Username (default $PARLEY_USER)
  --accept-new-key   Trust the key of a server met for the first time (also
                     ${ACCEPT_NEW_KEY_ENV}=1); without it, an unknown server is refused
  -h, --help         Show this help

The password comes from $PARLEY_PASSWORD, else the first line of stdin; a message read from
stdin needs $PARLEY_PASSWORD (stdin cannot carry both). An image must be a PNG, JPEG, GIF or WebP
file within the server's image limit (2 MiB by default).
`;

export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    to: { type: "string" },
    group: { type: "string" },
    world: { type: "boolean" },
    image: { type: "string" },
    server: { type: "string", short: "s" },
    user: { type: "string", short: "u" },
    "accept-new-key": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "send");
  if (values.help) {
    console.log(SEND_HELP);
    return 0;
  }
  const chosen = [values.to !== undefined, values.group !== undefined, values.world === true]
    .filter(Boolean);
  if (chosen.length !== 1) {
    throw new UsageError("Give exactly one of --to NAME, --group ID or --world");
  }
  let target: Target;
  if (values.to !== undefined) target = { user: values.to };
  else if (values.group !== undefined) {
    const id = Number(values.group.replace(/^#/, ""));
    if (!Number.isInteger(id) || id <= 0) {
      throw new UsageError(`--group "${values.group}" is not a group id`);
    }
    target = { group: id };
  } else target = { world: true };
  const user = values.user ?? Deno.env.get("PARLEY_USER");
  if (!user) throw new UsageError("Give the username with --user NAME or $PARLEY_USER");

  // The message and the password cannot both be stdin: its first line was taken as the password
  // (a failed login that sent the message's first line to the server as a guess).
  const textFromStdin = values.image === undefined && positionals.join(" ") === "";
  if (textFromStdin && Deno.env.get("PARLEY_PASSWORD") === undefined && !Deno.stdin.isTerminal()) {
    throw new UsageError(
      "The message is read from stdin, so the password cannot be: set PARLEY_PASSWORD, or give " +
        "the message as TEXT",
    );
  }
  const server = await resolveServer(values.server, "--server HOST:PORT");
  // At a terminal: prompts shown and the password hidden; piped: lines as they come.
  const term = openTerminal();
  const say = (text: string) => console.error(text);
  try {
    // What can be told without the server (not a file, empty, not an image) is told before
    // connecting; the size once the server's limits are known.
    const unlimited = { ...DEFAULT_LIMITS, max_image_bytes: Infinity, max_frame_bytes: Infinity };
    const read = values.image !== undefined
      ? await readImageFile(values.image, maxImageBytes(unlimited))
      : null;
    if (read && "problem" in read) throw new CliFailure(read.problem);
    const image = read?.data ?? null;
    const imageBytes = read?.size ?? 0;
    const imageName = values.image?.split("/").at(-1) ?? "";
    const early = image && imageProblem(image, imageName, unlimited, imageBytes);
    if (early) throw new CliFailure(early);
    // One-shot: the user's open chat stays connected, friends see nothing, no token is left.
    const { client } = await reach(
      server,
      say,
      { acceptNewKey: acceptNewKeyWanted(values["accept-new-key"]), term },
      { oneShot: true },
      // A script's server is its own: the one `parley` chats on by default stays as it was.
      false,
    );
    try {
      await authenticate(client, term, { user }, say);
      let text = positionals.join(" ");
      if (!image && text === "") text = (await readRest(term)).replace(/\n$/, "");
      if (!image && text === "") {
        throw new CliFailure("Nothing to send: give TEXT or pipe it on stdin");
      }
      // The server's own limits come with the login; an image over its frame limit would cost
      // the connection, so it is refused here.
      // Text within the documented limit needs no wait: a smaller server limit is a clean refusal.
      const needed = image !== null || textProblem(text, DEFAULT_LIMITS) !== null;
      const limits = await client.serverLimits(needed ? LIMITS_WAIT_MS : 0);
      const problem = image
        ? imageProblem(image, imageName, limits, imageBytes)
        : textProblem(text, limits);
      if (problem) throw new CliFailure(problem);
      const receipt = image
        ? await client.sendImage(target, image, imageName)
        : await client.sendText(target, text);
      if (receipt.skipped?.length) {
        say(shown`Not delivered to ${receipt.skipped.join(", ")}: their queue is full.`);
      }
      return 0;
    } finally {
      client.close();
    }
  } catch (e) {
    if (e instanceof CliFailure || e instanceof ParleyError) {
      console.error(`parley: ${sentence(e.message)}`);
      return 1;
    }
    if (e instanceof Error && e.name === "ConnectionClosedError") {
      console.error(`parley: not sent: ${sentence(e.message)}`);
      return 1;
    }
    throw e;
  } finally {
    term.close();
  }
}

/** How long to wait for the limits announced after login before using the documented ones. */
const LIMITS_WAIT_MS = 2000;

async function readRest(term: Terminal): Promise<string> {
  term.setPrompt("");
  const lines: string[] = [];
  while (true) {
    const line = await term.readLine();
    if (line === null) return lines.join("\n");
    lines.push(line);
  }
}
