/**
 * Trust on first use: the first identity key a server shows is pinned, a different key later is
 * refused. Where pins live depends on the client: a file for the terminal (known_hosts.ts), the
 * browser's storage for the web app.
 */

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
