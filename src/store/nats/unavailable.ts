/**
 * Which errors of the NATS client mean "JetStream could not be reached for now": a server gone
 * mid-request, a reconnect under way, a stream electing a new leader. A retry in a few seconds
 * may work, so users are told that rather than that the server failed.
 */

import {
  ClosedConnectionError,
  ConnectionError,
  JetStreamApiError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "../../cluster/nats.ts";

export function natsUnavailable(e: unknown): boolean {
  if (e instanceof JetStreamApiError) return e.status === 503; // no leader, no quorum
  // A request error is an outage only for what it wraps (not, say, a permissions violation).
  if (e instanceof RequestError) return e.isNoResponders() || natsUnavailable(e.cause);
  return e instanceof TimeoutError || e instanceof NoRespondersError ||
    e instanceof ConnectionError || e instanceof ClosedConnectionError ||
    // No responders to a JetStream request (the package does not export its class).
    (e instanceof Error && e.name === "JetStreamNotEnabled");
}
