/**
 * The open chat connections, counted in total and per address, and the caps on both
 * (`limits.maxConnections`, `limits.maxConnectionsPerIp`). A connection is admitted when it is
 * accepted and released when its serving ends; in between it counts against both caps. An IPv6
 * peer counts as its prefix (peer_key.ts): one host owns a whole /64 and could otherwise take
 * every slot.
 */

import { closeQuietly } from "./accept.ts";
import { peerKey } from "./peer_key.ts";

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  ipv6PrefixBits: number;
}

export class ConnectionTable<C extends { close(): void } = Deno.Conn> {
  /** Each open connection and its address key. */
  readonly #open = new Map<C, string>();
  /** Open connections per address key; a key with none has no entry. */
  readonly #perKey = new Map<string, number>();

  constructor(readonly limits: ConnectionLimits) {}

  /** The key a peer's address counts under: the address, or its IPv6 prefix. */
  keyOf(hostname: string): string {
    return peerKey(hostname, this.limits.ipv6PrefixBits);
  }

  /** Open connections in all. */
  get size(): number {
    return this.#open.size;
  }

  /** Open connections counted under `key`. */
  countFrom(key: string): number {
    return this.#perKey.get(key) ?? 0;
  }

  /**
   * Counts `conn` under `key` unless either cap is reached; false if it is refused (the caller
   * closes it). Admitted, it counts until `release`. `capKey` false skips the per-address cap
   * (a trusted proxy's connection, moved to its client's key once its request names it).
   */
  admit(conn: C, key: string, capKey = true): boolean {
    assert(!this.#open.has(conn), "a connection admitted twice");
    const fromKey = this.countFrom(key);
    if (this.#open.size >= this.limits.maxConnections) return false;
    if (capKey && fromKey >= this.limits.maxConnectionsPerIp) return false;
    this.#open.set(conn, key);
    this.#perKey.set(key, fromKey + 1);
    return true;
  }

  /**
   * Counts `conn` under `key` from now on instead of the key it was admitted under (a client
   * behind a trusted proxy, once its own address is known); false, and nothing changed, if
   * `key` has reached its cap.
   */
  moveTo(conn: C, key: string): boolean {
    const from = this.#open.get(conn);
    assert(from !== undefined, "a connection moved that is not open");
    if (from === key) return true;
    const toCount = this.countFrom(key);
    if (toCount >= this.limits.maxConnectionsPerIp) return false;
    const left = this.countFrom(from) - 1;
    assert(left >= 0, "an address's count below zero");
    if (left === 0) this.#perKey.delete(from);
    else this.#perKey.set(from, left);
    this.#open.set(conn, key);
    this.#perKey.set(key, toCount + 1);
    return true;
  }

  /** `conn` no longer counts: its serving ended. */
  release(conn: C): void {
    const key = this.#open.get(conn);
    assert(key !== undefined, "a connection released that is not open");
    this.#open.delete(conn);
    const left = this.countFrom(key) - 1;
    assert(left >= 0, "an address's count below zero");
    if (left === 0) this.#perKey.delete(key);
    else this.#perKey.set(key, left);
  }

  /** Closes every open connection (shutdown); each is released when its serving ends. */
  closeAll(): void {
    for (const conn of this.#open.keys()) closeQuietly(conn);
  }
}

function assert(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`Connection table invariant broken: ${what}`);
}
