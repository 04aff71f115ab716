/**
 * The figures bench.ts derives from its raw readings, as pure functions (bench.ts runs the bench
 * when imported; these are tested on their own): unread input from /proc/net/tcp, the relay
 * pairs' spread, the server's CPU per operation.
 */

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The p-quantile of ascending `sorted` (the nearest rank below); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * Bytes that arrived on the server's connections and that it has not read yet, from the
 * kernel's table of IPv4 TCP sockets: the rx_queue of every socket whose local port is the
 * server's, but for the listener (state 0A, whose queue is its accept backlog).
 */
export function unreadAt(procNetTcp: string, port: number): { sockets: number; bytes: number } {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let sockets = 0;
  let bytes = 0;
  for (const row of procNetTcp.split("\n").slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue ...
    const f = row.trim().split(/\s+/);
    if (f.length < 5 || !f[1].endsWith(local) || f[3] === "0A") continue;
    const rx = parseInt(f[4].slice(f[4].indexOf(":") + 1), 16);
    if (rx > 0) {
      sockets++;
      bytes += rx;
    }
  }
  return { sockets, bytes };
}

/** The figures of a run's samples of unread input (see unreadAt). */
export interface Unread {
  unread_samples: number;
  unread_sockets_max: number;
  unread_sockets_mean: number;
  unread_bytes_max: number;
  unread_bytes_mean: number;
}

export function unreadFigures(seen: { sockets: number; bytes: number }[]): Unread | null {
  if (seen.length === 0) return null;
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  return {
    unread_samples: seen.length,
    unread_sockets_max: Math.max(...seen.map((x) => x.sockets)),
    unread_sockets_mean: round(mean(seen.map((x) => x.sockets)), 1),
    unread_bytes_max: Math.max(...seen.map((x) => x.bytes)),
    unread_bytes_mean: Math.round(mean(seen.map((x) => x.bytes))),
  };
}

/**
 * The spread between pairs, from each pair's ms from "go" to its first and to its last message
 * (null: none arrived): completion's median, p90, max and max/median, the first messages' median
 * and max, and how many first messages came later than 100 ms.
 */
export function pairFigures(firstMs: (number | null)[], lastMs: (number | null)[]) {
  const sorted = (xs: (number | null)[]) =>
    xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  const f = sorted(firstMs);
  const l = sorted(lastMs);
  const mid = percentile(l, 0.5);
  const max = l[l.length - 1] ?? NaN;
  return {
    pair_count: firstMs.length,
    pair_done_ms_p50: round(mid, 1),
    pair_done_ms_p90: round(percentile(l, 0.9), 1),
    pair_done_ms_max: round(max, 1),
    pair_done_ratio: round(max / mid, 2),
    pair_first_ms_p50: round(percentile(f, 0.5), 1),
    pair_first_ms_max: round(f[f.length - 1] ?? NaN, 1),
    pair_first_over_100ms: f.filter((x) => x > 100).length,
    pair_without_message: firstMs.length - f.length,
  };
}

/** µs of CPU per operation: `cpuSec` seconds over `ops` operations (null: no reading, no ops). */
export function usPerOp(cpuSec: number | null, ops: number): number | null {
  return cpuSec === null || !(ops > 0) ? null : round(cpuSec * 1e6 / ops, 1);
}

/**
 * The nodes of a cluster relay pair: the sender on node `pair % nodes`, its receiver on the next
 * node, so that with more than one node every message crosses from one node to another.
 */
export function pairNodes(pair: number, nodes: number): { sender: number; receiver: number } {
  return { sender: pair % nodes, receiver: (pair + 1) % nodes };
}

/** The sum of several processes' CPU seconds (null when one of them could not be read). */
export function sumCpu(secs: (number | null)[]): number | null {
  return secs.some((s) => s === null) ? null : secs.reduce((a: number, s) => a + s!, 0);
}

/**
 * The rotation of `urls` that starts at `first`: each cluster node lists its own NATS server
 * first, as docs/cluster.md advises, so that the nodes spread over the servers.
 */
export function rotate<T>(urls: T[], first: number): T[] {
  const k = first % urls.length;
  return [...urls.slice(k), ...urls.slice(0, k)];
}
