/** `parley send`: one message from a script; exit code 0 only once the server acknowledged it. */

import type { Target } from "../client/client.ts";
import { ParleyError } from "../protocol/errors.ts";
import { authenticate, CliFailure, reach, resolveServer } from "./login.ts";
import { shown, visible } from "./safe_text.ts";
import { PlainTerminal } from "./terminal.ts";
import { parseFlags, UsageError } from "./usage.ts";

export const SEND_HELP = `Usage: parley send (--to NAME | --group ID | --world) [options] [TEXT...]

Sends one message and exits: 0 once the server has acknowledged it (it is then stored until
delivered), 1 if it was refused or could not be sent, 2 for a usage mistake. Without TEXT the
message is read from stdin (all of it, multi-line). An image is sent with --image PATH.

Options:
  --to NAME          Private message to a user
  --group ID         Message to a group you are in
  --world            Message to the world room
  --image PATH       Send this image instead of text
  -s, --server ADDR  Server (default $PARLEY_SERVER, else the last server used)
  -u, --user NAME    Username (default $PARLEY_USER)
  -h, --help         Show this help

The password comes from $PARLEY_PASSWORD, else the first line of stdin.
`;

export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    to: { type: "string" },
    group: { type: "string" },
    world: { type: "boolean" },
    image: { type: "string" },
    server: { type: "string", short: "s" },
    user: { type: "string", short: "u" },
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

  const server = await resolveServer(values.server);
  const term = new PlainTerminal();
  const say = (text: string) => console.error(text);
  try {
    const image = values.image !== undefined ? await readImage(values.image) : null;
    // One-shot: the user's open chat stays connected, friends see nothing, no token is left.
    const { client } = await reach(server, say, { oneShot: true });
    try {
      await authenticate(client, term, { user }, say);
      let text = positionals.join(" ");
      if (!image && text === "") text = (await readRest(term)).replace(/\n$/, "");
      if (!image && text === "") {
        throw new CliFailure("Nothing to send: give TEXT or pipe it on stdin");
      }
      const receipt = image
        ? await client.sendImage(target, image, values.image!.split("/").at(-1))
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
      console.error(`parley: ${visible(e.message)}`);
      return 1;
    }
    if (e instanceof Error && e.name === "ConnectionClosedError") {
      console.error(`parley: not sent: ${visible(e.message)}`);
      return 1;
    }
    throw e;
  }
}

async function readImage(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new CliFailure(`Cannot read the image "${path}": ${(e as Error).message}`);
  }
}

async function readRest(term: PlainTerminal): Promise<string> {
  const lines: string[] = [];
  while (true) {
    const line = await term.readLine();
    if (line === null) return lines.join("\n");
    lines.push(line);
  }
}
