/** Where the terminal client keeps its files: pinned keys, the last server, local history. */

import { join } from "node:path";

function home(): string {
  return Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
}

/** PARLEY_CONFIG_DIR, else $XDG_CONFIG_HOME/parley, else ~/.config/parley. */
export function clientConfigDir(): string {
  const explicit = Deno.env.get("PARLEY_CONFIG_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  return xdg ? join(xdg, "parley") : join(home(), ".config", "parley");
}

/** PARLEY_DATA_DIR, else $XDG_DATA_HOME/parley, else ~/.local/share/parley. */
export function clientDataDir(): string {
  const explicit = Deno.env.get("PARLEY_DATA_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_DATA_HOME");
  return xdg ? join(xdg, "parley") : join(home(), ".local", "share", "parley");
}

/** Received images and files: PARLEY_DOWNLOADS, else <data dir>/downloads. */
export function downloadsDir(): string {
  return Deno.env.get("PARLEY_DOWNLOADS") ?? join(clientDataDir(), "downloads");
}

export function knownHostsPath(): string {
  return join(clientConfigDir(), "known_hosts");
}

const LAST_SERVER = "last_server";

export async function lastServer(): Promise<string | null> {
  try {
    return (await Deno.readTextFile(join(clientConfigDir(), LAST_SERVER))).trim() || null;
  } catch {
    return null;
  }
}

export async function rememberServer(addr: string): Promise<void> {
  await Deno.mkdir(clientConfigDir(), { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(join(clientConfigDir(), LAST_SERVER), addr + "\n");
}

const DEVICE_SECRET = "device_secret";
const DEVICE_SECRET_BYTES = 32;

/**
 * This installation's random secret (made once, mode 0600). Login derives a device id from it
 * per server and user, so that the server keeps one resume token for this device.
 */
export async function deviceSecret(): Promise<Uint8Array> {
  const path = join(clientConfigDir(), DEVICE_SECRET);
  try {
    const hex = (await Deno.readTextFile(path)).trim();
    if (/^[0-9a-f]{64}$/.test(hex)) return Uint8Array.fromHex(hex);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const secret = crypto.getRandomValues(new Uint8Array(DEVICE_SECRET_BYTES));
  await Deno.mkdir(clientConfigDir(), { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(path, secret.toHex() + "\n", { mode: 0o600 });
  return secret;
}

/** The username last logged in on each server, one `host:port name` per line. */
const LAST_USERS = "last_users";

async function readLastUsers(): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  try {
    const text = await Deno.readTextFile(join(clientConfigDir(), LAST_USERS));
    for (const line of text.split("\n")) {
      const [addr, name] = line.trim().split(/\s+/);
      if (addr && name) map.set(addr, name);
    }
  } catch {
    // None remembered yet.
  }
  return map;
}

export async function lastUser(addr: string): Promise<string | null> {
  return (await readLastUsers()).get(addr) ?? null;
}

export async function rememberUser(addr: string, name: string): Promise<void> {
  const map = await readLastUsers();
  map.set(addr, name);
  await Deno.mkdir(clientConfigDir(), { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(
    join(clientConfigDir(), LAST_USERS),
    [...map].map(([a, n]) => `${a} ${n}\n`).join(""),
  );
}
