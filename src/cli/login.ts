/** Reaching a server and logging in, shared by `connect` and `send`. */

// Installs Deno's client platform, which connectFirst's connections use.
import "../client/client.ts";
import type { ConnectOptions, ParleyClient } from "../client/client.ts";
import { connectFirst, UnreachableError } from "../client/endpoints.ts";
import { HostKeyChangedError, KnownHosts } from "../client/known_hosts.ts";
import { ClusterPins } from "../client/pins.ts";
import { ErrorCode, HandshakeError, ParleyError } from "../protocol/errors.ts";
import { usernameProblem } from "../protocol/names.ts";
import { knownHostsPath, lastServer, rememberServer } from "./paths.ts";
import { shown, visible } from "../terminal/safe_text.ts";
import type { Terminal } from "../terminal/terminal.ts";
import { parseAddress, UsageError } from "../terminal/usage.ts";

export const DEFAULT_PORT = 7070;

/**
 * The shortest password a server takes by default (`accounts.minPasswordLength`). The client
 * says it before asking for a new password; the server's own setting decides.
 */
export const MIN_PASSWORD_LENGTH = 8;

/** Tries at a password before the client gives up: typos get another chance, guessing does not. */
export const PASSWORD_TRIES = 3;

/** Set to 1 to trust a server's key on first contact without asking (for scripts). */
export const ACCEPT_NEW_KEY_ENV = "PARLEY_ACCEPT_NEW_KEY";

/** Whether --accept-new-key (or PARLEY_ACCEPT_NEW_KEY=1) was given. */
export function acceptNewKeyWanted(flag: boolean | undefined): boolean {
  const env = Deno.env.get(ACCEPT_NEW_KEY_ENV);
  return flag === true || (env !== undefined && env !== "" && env !== "0");
}

/** A sentence for the user; the command prints it and exits 1. */
export class CliFailure extends Error {
  override name = "CliFailure";
}

/** One address of a server, and how the client names it ("host:port", IPv6 in brackets). */
export interface ServerAddress {
  host: string;
  port: number;
  addr: string;
}

/**
 * The server to connect to: one address, or several for the nodes of a cluster (which all
 * present one identity key). Its first address names it for local history and the last username.
 */
export interface ServerChoice extends ServerAddress {
  /** Every address, in order; the first is host:port. */
  all: ServerAddress[];
  /** The addresses as the client writes them back (last_server): "a:1,b:2", or addr alone. */
  list: string;
}

/**
 * The server to use: the argument, else PARLEY_SERVER, else the last one used; each may list
 * several addresses of one server separated by commas. `how` says how the command takes an
 * address, for the sentence when there is none.
 */
export async function resolveServer(
  arg: string | undefined,
  how = '"parley connect HOST:PORT"',
): Promise<ServerChoice> {
  const text = arg ?? Deno.env.get("PARLEY_SERVER") ?? await lastServer();
  if (!text) throw new UsageError(`Give a server address: ${how} or $PARLEY_SERVER`);
  const all: ServerAddress[] = [];
  for (const part of text.split(",").map((p) => p.trim())) {
    if (part === "") {
      throw new UsageError(`"${text}" has an empty address; separate them by commas`);
    }
    const { host, port } = parseAddress(part, DEFAULT_PORT);
    const addr = `${host.includes(":") ? `[${host}]` : host}:${port}`;
    if (all.some((a) => a.addr === addr)) {
      throw new UsageError(`"${text}" names ${addr} twice`);
    }
    all.push({ host, port, addr });
  }
  return { ...all[0], all, list: all.map((a) => a.addr).join(",") };
}

/**
 * Connects to the first of the server's addresses that answers, in order (an unreachable one is
 * skipped). A server never seen before shows its key's fingerprint and is trusted only when the
 * user says so (on a terminal) or --accept-new-key was given, before any password goes out; the
 * key is then pinned under every address given, and a node presenting another key is refused.
 * `remember`: the server becomes the last one used, the default of the next plain `parley`.
 */
export async function reach(
  server: ServerChoice,
  say: (text: string) => void,
  trust: { acceptNewKey: boolean; term: Terminal },
  extra: Partial<ConnectOptions> = {},
  remember = true,
): Promise<{ client: ParleyClient; options: ConnectOptions; at: number }> {
  const named = server.list;
  const onFirstContact = async (print: string): Promise<boolean> => {
    if (trust.acceptNewKey) {
      say(`First contact with ${named}. Its key fingerprint is ${print}; pinned.`);
      return true;
    }
    if (!Deno.stdin.isTerminal()) {
      throw new CliFailure(
        `${named} is a server not met before; its key fingerprint is ${print}. Check it ` +
          `with the server's operator, then run again with --accept-new-key (or ` +
          `${ACCEPT_NEW_KEY_ENV}=1) to trust it`,
      );
    }
    say(
      `First contact with ${named}. Its key fingerprint is ${print}.\n` +
        `Compare it with the fingerprint the server's operator published.`,
    );
    trust.term.setPrompt("Trust this key? [y/N] ");
    const answer = (await trust.term.readLine())?.trim().toLowerCase();
    if (answer !== "y" && answer !== "yes") {
      throw new CliFailure(`Not connected: the key of ${named} was not trusted`);
    }
    say(`Pinned the key of ${named}.`);
    return true;
  };
  const knownHosts = new KnownHosts(knownHostsPath());
  const options: ConnectOptions = {
    host: server.host,
    port: server.port,
    alternates: server.all.slice(1).map(({ host, port }) => ({ host, port })),
    // Pinned as ParleyClient.connect names an address: host:port, IPv6 without brackets.
    knownHosts: server.all.length === 1
      ? knownHosts
      : new ClusterPins(knownHosts, server.all.map((a) => `${a.host}:${a.port}`)),
    onFirstContact,
    ...extra,
  };
  try {
    const { client, at } = await connectFirst(
      options,
      0,
      (e) => e instanceof CliFailure || e instanceof Deno.errors.Interrupted,
    );
    if (remember) await rememberServer(server.list);
    return { client, options, at };
  } catch (e) {
    if (e instanceof CliFailure || e instanceof Deno.errors.Interrupted) throw e;
    if (e instanceof UnreachableError) {
      throw new CliFailure(
        `Cannot reach any address of the server: ${
          e.failures.map((f) => connectProblem(f.error, f.address)).join("; ")
        }`,
      );
    }
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
  /** The username last used on this server, offered when none is given. */
  lastUser?: string | null;
}

/**
 * Logs in: the username from the flag or a prompt, the password from PARLEY_PASSWORD, stdin or
 * a hidden prompt. On a terminal, a wrong password is asked again (PASSWORD_TRIES in all), and an
 * unknown name offers to create the account.
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
    const last = creds.lastUser ?? null;
    if (interactive) term.setPrompt(last ? `Username [${last}]: ` : "Username: ");
    name = (await term.readLine())?.trim() || last || "";
  }
  if (!name) throw new CliFailure("No username given");
  const problem = usernameProblem(name);
  if (problem) throw new CliFailure(problem);
  const envPassword = Deno.env.get("PARLEY_PASSWORD");
  // Only a person at a terminal can be asked again, or asked to repeat a new password.
  const canAsk = interactive && envPassword === undefined;
  let register = creds.register === true;
  if (register && canAsk) say(passwordRule(name));
  let password: string | null = envPassword ?? await term.readSecret("Password: ");
  if (password === null) throw new CliFailure("No password given");
  for (let tries = 1;; tries++) {
    if (register) {
      if (canAsk) password = await choosePassword(term, say, password);
      // Only a refusal that can be asked again leaves no password.
      if (password === null) throw new Error("No password to register with");
      try {
        say(
          shown`Registered ${await registerWithInvite(
            client,
            term,
            name,
            password,
            creds.invite,
          )}.`,
        );
      } catch (e) {
        const weak = e instanceof ParleyError && e.code === ErrorCode.BAD_PASSWORD;
        if (!weak || !canAsk || tries >= PASSWORD_TRIES) return failure(e);
        say(shown`${e.message}.`);
        password = null;
        continue;
      }
    }
    try {
      return (await client.login(name, password!)).username;
    } catch (e) {
      const code = e instanceof ParleyError ? e.code : null;
      if (code === ErrorCode.NO_SUCH_USER && !register && interactive) {
        term.setPrompt(`There is no account "${name}" on this server. Create it? [y/N] `);
        const answer = (await term.readLine())?.trim().toLowerCase();
        if (answer === "y" || answer === "yes") {
          register = true;
          if (canAsk) say(passwordRule(name));
          tries = 0;
          continue;
        }
        throw new CliFailure(`Not logged in: there is no account "${name}"`);
      }
      if (code === ErrorCode.WRONG_PASSWORD && canAsk && tries < PASSWORD_TRIES) {
        say("Wrong password; try again.");
        password = await term.readSecret("Password: ");
        if (password === null) throw new CliFailure("No password given");
        continue;
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
      term.print(visible(e.message));
      term.setPrompt("Invite code (empty to give up): ");
      invite = (await term.readLine())?.trim();
      if (!invite) return failure(e);
    }
  }
}

function passwordRule(name: string): string {
  return `Choose a password for ${name}: at least ${MIN_PASSWORD_LENGTH} characters.`;
}

/**
 * Asks for a new password twice (taking `first` as the first answer when given) until the two
 * match and it is long enough; PASSWORD_TRIES attempts. Null when the user gives up (Ctrl-D).
 */
export async function choosePassword(
  term: Terminal,
  say: (text: string) => void,
  first: string | null = null,
): Promise<string> {
  for (let tries = 0; tries < PASSWORD_TRIES; tries++) {
    const password = first ?? await term.readSecret("New password: ");
    first = null;
    if (password === null) throw new CliFailure("No password given");
    if ([...password].length < MIN_PASSWORD_LENGTH) {
      say(
        `Passwords need at least ${MIN_PASSWORD_LENGTH} characters; that one has ${
          [...password].length
        }.`,
      );
      continue;
    }
    const again = await term.readSecret("Repeat password: ");
    if (again === null) throw new CliFailure("No password given");
    if (again === password) return password;
    say("The passwords do not match.");
  }
  throw new CliFailure("No new password chosen");
}

function failure(e: unknown): never {
  if (e instanceof ParleyError) throw new CliFailure(e.message);
  throw e;
}
