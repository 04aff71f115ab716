/** Where the terminal client keeps its files: pinned keys, the last server, local history. */

import { join } from "node:path";

/** PARLEY_CONFIG_DIR, else $XDG_CONFIG_HOME/parley, else ~/.config/parley. */
export function clientConfigDir(): string {
  const explicit = Deno.env.get("PARLEY_CONFIG_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  if (xdg) return join(xdg, "parley");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return join(home, ".config", "parley");
}

export function knownHostsPath(): string {
  return join(clientConfigDir(), "known_hosts");
}
