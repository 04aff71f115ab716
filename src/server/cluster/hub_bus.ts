/**
 * What the cluster hub needs of NATS, and nothing more: publish, subscribe, request with a
 * timeout, and a word when the link came back (messages may have been lost while it was down).
 * `natsBus` is the real one; the seeded simulation (tests/sim/hub_sim.ts) gives the hub a
 * network of its own that delays, reorders between senders and drops.
 */

import type { NatsConnection } from "../../cluster/nats.ts";

/** A message's bytes, and how to answer it when it was a request. */
export type BusHandler = (data: Uint8Array, respond: ((data: Uint8Array) => void) | null) => void;

export interface HubBus {
  publish(subject: string, data: Uint8Array): void;
  /** Returns the unsubscribe. */
  subscribe(subject: string, handle: BusHandler): () => void;
  /** The answer's bytes; rejects when none comes within `timeoutMs`. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** `fn` runs each time the link comes back after it was lost. */
  onReconnect(fn: () => void): void;
  /** Resolves once what was published so far has reached the server. */
  flush(): Promise<void>;
  readonly closed: boolean;
}

export function natsBus(nc: NatsConnection): HubBus {
  const reconnected: (() => void)[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "reconnect") { for (const fn of reconnected) fn(); }
    }
  })();
  return {
    publish: (subject, data) => nc.publish(subject, data),
    subscribe(subject, handle) {
      const sub = nc.subscribe(subject, {
        callback: (err, m) => {
          if (err) return;
          handle(m.data, m.reply ? (data) => m.respond(data) : null);
        },
      });
      return () => sub.unsubscribe();
    },
    request: async (subject, data, timeoutMs) =>
      (await nc.request(subject, data, { timeout: timeoutMs })).data,
    onReconnect: (fn) => void reconnected.push(fn),
    flush: () => nc.flush(),
    get closed() {
      return nc.isClosed();
    },
  };
}
