/**
 * Trust on first use, like SSH's known_hosts: the first key a server shows is pinned per
 * host:port; a different key later is refused. One line per server: `host:port <key hex>`.
 */

import { dirname } from "node:path";
import type { PinStore } from "./pins.ts";

export { HostKeyChangedError } from "./pins.ts";

export class KnownHosts implements PinStore {
  constructor(readonly path: string) {}

  async #read(): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    let text = "";
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    for (const line of text.split("\n")) {
      const [addr, key] = line.trim().split(/\s+/);
      if (addr && key && /^[0-9a-f]{64}$/.test(key)) map.set(addr, key);
    }
    return map;
  }

  /** The pinned key for `addr` ("host:port"), or null on first contact. */
  async lookup(addr: string): Promise<Uint8Array | null> {
    const hex = (await this.#read()).get(addr);
    return hex ? Uint8Array.fromHex(hex) : null;
  }

  howToForget(addr: string): string {
    return `remove the line for ${addr} from ${this.path}`;
  }

  async remember(addr: string, key: Uint8Array): Promise<void> {
    await Deno.mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(this.path, `${addr} ${key.toHex()}\n`, { append: true, mode: 0o600 });
  }
}
