/** Reaching a server and logging in, shared by `connect` and `send`. */

import { type ConnectOptions, ParleyClient } from "../client/client.ts";
import { HostKeyChangedError, KnownHosts } from "../client/known_hosts.ts";
import { ErrorCode, HandshakeError, ParleyError } from "../protocol/errors.ts";
import { usernameProblem } from "../protocol/names.ts";
import { knownHostsPath, lastServer, rememberServer } from "./paths.ts";
import { shown } from "./safe_text.ts";
import type { Terminal } from "./terminal.ts";
import { parseAddress, UsageError } from "./usage.ts";

export const DEFAULT_PORT = 7070;

/** A sentence for the user; the command prints it and exits 1. */
export class CliFailure extends Error {
  override name = "CliFailure";
}

/** The server to use: the argument, else PARLEY_SERVER, else the last one used. */
export async function resolveServer(
  arg: string | undefined,
): Promise<{ host: string; port: number; addr: string }> {
  const text = arg ?? Deno.env.get("PARLEY_SERVER") ?? await lastServer();
  if (!text) throw new UsageError('Give a server address: "parley connect HOST:PORT"');
  const { host, port } = parseAddress(text, DEFAULT_PORT);
  return { host, port, addr: `${host.includes(":") ? `[${host}]` : host}:${port}` };
}

export async function reach(
  server: { host: string; port: number; addr: string },
  say: (text: string) => void,
  extra: Partial<ConnectOptions> = {},
): Promise<{ client: ParleyClient; options: ConnectOptions }> {
  const options: ConnectOptions = {
    host: server.host,
    port: server.port,
    knownHosts: new KnownHosts(knownHostsPath()),
    ...extra,
  };
  try {
    const client = await ParleyClient.connect(options);
    if (client.firstContact) {
      say(
        `First contact with ${server.addr}. Its key fingerprint is ${client.fingerprint}; pinned.`,
      );
    }
    await rememberServer(server.addr);
    return { client, options };
  } catch (e) {
    throw new CliFailure(connectProblem(e, server.addr));
  }
}

function connectProblem(e: unknown, addr: string): string {
  if (e instanceof HostKeyChangedError) return e.message;
  if (e instanceof HandshakeError) return `Cannot talk to ${addr}: ${e.message}`;
  if (e instanceof Deno.errors.ConnectionRefused) return `No Parley server is listening at ${addr}`;
  if (e instanceof Error) return `Cannot connect to ${addr}: ${e.message}`;
  return `Cannot connect to ${addr}`;
}

export interface Credentials {
  user?: string;
  register?: boolean;
  /** For a server that takes new accounts by invitation. */
  invite?: string;
}

/**
 * Logs in: the username from the flag or a prompt, the password from PARLEY_PASSWORD, stdin or
 * a hidden prompt. On a terminal, an unknown name offers to create the account.
 */
export async function authenticate(
  client: ParleyClient,
  term: Terminal,
  creds: Credentials,
  say: (text: string) => void,
): Promise<string> {
  const interactive = Deno.stdin.isTerminal();
  let name = creds.user;
  if (!name) {
    if (interactive) term.setPrompt("Username: ");
    name = (await term.readLine())?.trim() ?? "";
  }
  if (!name) throw new CliFailure("No username given");
  const problem = usernameProblem(name);
  if (problem) throw new CliFailure(problem);
  const envPassword = Deno.env.get("PARLEY_PASSWORD");
  const password = envPassword ?? await term.readSecret("Password: ");
  if (password === null) throw new CliFailure("No password given");
  let register = creds.register === true;
  while (true) {
    if (register) {
      if (interactive && envPassword === undefined) {
        const again = await term.readSecret("Repeat password: ");
        if (again !== password) throw new CliFailure("The passwords do not match");
      }
      say(
        shown`Registered ${await registerWithInvite(client, term, name, password, creds.invite)}.`,
      );
    }
    try {
      return (await client.login(name, password)).username;
    } catch (e) {
      const noUser = e instanceof ParleyError && e.code === ErrorCode.NO_SUCH_USER;
      if (noUser && !register && interactive) {
        term.setPrompt(`There is no account "${name}" on this server. Create it? [y/N] `);
        const answer = (await term.readLine())?.trim().toLowerCase();
        if (answer === "y" || answer === "yes") {
          register = true;
          continue;
        }
      }
      return failure(e);
    }
  }
}

/** Registers, asking for an invite code on a terminal when the server wants one. */
async function registerWithInvite(
  client: ParleyClient,
  term: Terminal,
  name: string,
  password: string,
  invite: string | undefined,
): Promise<string> {
  while (true) {
    try {
      return await client.register(name, password, invite);
    } catch (e) {
      const wanted = e instanceof ParleyError && e.code === ErrorCode.BAD_INVITE;
      if (!wanted || !Deno.stdin.isTerminal()) return failure(e);
      term.print(e.message);
      term.setPrompt("Invite code (empty to give up): ");
      invite = (await term.readLine())?.trim();
      if (!invite) return failure(e);
    }
  }
}

function failure(e: unknown): never {
  if (e instanceof ParleyError) throw new CliFailure(e.message);
  throw e;
}
