/**
 * Trust on first use: the first identity key a server shows is pinned, a different key later is
 * refused. Where pins live depends on the client: a file for the terminal (known_hosts.ts), the
 * browser's storage for the web app.
 */

import { sameBytes } from "./platform.ts";

export interface PinStore {
  /** The pinned key for `addr` ("host:port", or an origin), or null on first contact. */
  lookup(addr: string): Promise<Uint8Array | null>;
  remember(addr: string, key: Uint8Array): Promise<void>;
  /** How a user who trusts a changed key removes the old pin, as a sentence. */
  howToForget(addr: string): string;
}

/** The server's key differs from the one pinned on first contact. */
export class HostKeyChangedError extends Error {
  override name = "HostKeyChangedError";
}

/**
 * The pin of a server known by several addresses (the nodes of a cluster, which all present one
 * key): a key is checked against every address's pin, so a node is held to the key pinned under
 * any of them, and first contact pins it under all. Pins that disagree among themselves are
 * refused: those addresses are not one server.
 */
export class ClusterPins implements PinStore {
  readonly #names: readonly string[];

  constructor(private readonly inner: PinStore, names: readonly string[]) {
    this.#names = names;
  }

  #namesWith(addr: string): string[] {
    return this.#names.includes(addr) ? [...this.#names] : [addr, ...this.#names];
  }

  async lookup(addr: string): Promise<Uint8Array | null> {
    let found: { name: string; key: Uint8Array } | null = null;
    for (const name of this.#namesWith(addr)) {
      const key = await this.inner.lookup(name);
      if (key === null) continue;
      if (found && !sameBytes(found.key, key)) {
        throw new HostKeyChangedError(
          `${found.name} and ${name} have different keys pinned, so they are not one server. ` +
            `If you trust the change, ${this.howToForget(addr)}.`,
        );
      }
      found ??= { name, key };
    }
    return found?.key ?? null;
  }

  async remember(addr: string, key: Uint8Array): Promise<void> {
    for (const name of this.#namesWith(addr)) {
      if (await this.inner.lookup(name) === null) await this.inner.remember(name, key);
    }
  }

  howToForget(addr: string): string {
    const names = this.#namesWith(addr);
    if (names.length === 1) return this.inner.howToForget(names[0]);
    return names.map((n) => this.inner.howToForget(n)).join(", and ");
  }
}
