/**
 * A server with several addresses (the nodes of a cluster, which all present one identity key):
 * the connect options of each, and a first connection to whichever answers first in order.
 * A node that cannot be reached is skipped; a node presenting a key other than the pinned one is
 * never skipped quietly: that ends the attempt, exactly as with one address.
 */

import { type ConnectOptions, ParleyClient } from "./core.ts";
import { HostKeyChangedError } from "./pins.ts";

/**
 * Connect plus handshake deadline for each address when there are others to try: a node that
 * swallows packets should not hold the client for the single-address deadline (10 s) before the
 * next is tried, yet a loaded node still has time to finish its handshake.
 */
export const FAILOVER_TIMEOUT_MS = 5000;

/** The options for each address in order: host:port first, then `alternates`. */
export function endpointOptions(opts: ConnectOptions): ConnectOptions[] {
  const others = opts.alternates ?? [];
  if (others.length === 0) return [opts];
  const timeoutMs = opts.timeoutMs ?? FAILOVER_TIMEOUT_MS;
  return [opts, ...others].map((e) => ({
    ...opts,
    host: e.host,
    port: e.port,
    dial: e.dial,
    timeoutMs,
  }));
}

/** No address of the server could be reached; `failures` says why for each, in order. */
export class UnreachableError extends Error {
  override name = "UnreachableError";
  constructor(readonly failures: { address: string; error: unknown }[]) {
    super(
      `No address of the server could be reached: ${
        failures.map((f) => `${f.address}: ${(f.error as Error)?.message ?? String(f.error)}`)
          .join("; ")
      }`,
    );
  }
}

export interface FirstConnection {
  client: ParleyClient;
  /** The index of its address in endpointOptions(opts). */
  at: number;
}

/**
 * Connects to the first address that answers, in order from `from` (wrapping around). With one
 * address its error is thrown as it is; with several, UnreachableError once all failed. A
 * HostKeyChangedError, or an error `fatal` names (the caller's own refusals), is thrown at once.
 */
export async function connectFirst(
  opts: ConnectOptions,
  from = 0,
  fatal: (e: unknown) => boolean = () => false,
): Promise<FirstConnection> {
  const all = endpointOptions(opts);
  if (all.length === 1) return { client: await ParleyClient.connect(all[0]), at: 0 };
  const failures: { address: string; error: unknown }[] = [];
  for (let i = 0; i < all.length; i++) {
    const at = (from + i) % all.length;
    try {
      return { client: await ParleyClient.connect(all[at]), at };
    } catch (e) {
      if (e instanceof HostKeyChangedError || fatal(e)) throw e;
      failures.push({ address: `${all[at].host}:${all[at].port}`, error: e });
    }
  }
  throw new UnreachableError(failures);
}
