/**
 * File transfers between users on different nodes. A transfer lives in the relay of its
 * sender's node, whose chunks arrive there; its id carries that node's id (id / 2^32), so the
 * receiver's node forwards the receiver's answer, acknowledgements and cancel to it over NATS
 * and returns its verdict. The pushes to the receiver go through the hub like any other.
 */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { type FileLimits, FileRelay } from "../file_relay.ts";
import type { Logger } from "../log.ts";
import type { ClusterHub } from "./cluster_hub.ts";
import { envelope, openEnvelope } from "./bus.ts";
import type { HubBus } from "./hub_bus.ts";

const NODE_SPAN = 2 ** 32;
/** How long a forwarded request may take before the user is told the other node is away. */
const FORWARD_TIMEOUT_MS = 5000;

type Forwarded =
  | { op: "answer"; id: number; user: string; accept: boolean }
  | { op: "ack"; id: number; user: string; received: number; sha256Ok?: boolean }
  | { op: "cancel"; id: number; user: string; reason: string };

interface Verdict {
  code?: number;
  message?: string;
}

export class ClusterFileRelay extends FileRelay {
  readonly #hub: ClusterHub;
  readonly #bus: HubBus;
  readonly #log: Logger;
  #unsubscribe: (() => void) | null = null;

  constructor(
    hub: ClusterHub,
    bus: HubBus,
    log: Logger,
    limits: FileLimits,
    maxFileBytes: number,
  ) {
    super(hub, limits, maxFileBytes, Number(hub.node) * NODE_SPAN);
    this.#hub = hub;
    this.#bus = bus;
    this.#log = log;
  }

  start(): void {
    this.#unsubscribe = this.#bus.subscribe(
      this.#hub.subjects.node(this.#hub.node, "files"),
      (data, respond) => void this.#serve(data, respond),
    );
  }

  close(): void {
    this.#unsubscribe?.();
  }

  /** The node that relays transfer `id`, when it is not this one. */
  #elsewhere(id: number): string | null {
    const node = String(Math.floor(id / NODE_SPAN));
    return node === this.#hub.node || node === "0" ? null : node;
  }

  override answer(id: number, user: string, accept: boolean): void | Promise<void> {
    const node = this.#elsewhere(id);
    if (!node) return super.answer(id, user, accept);
    return this.#forward(node, { op: "answer", id, user, accept });
  }

  override ack(id: number, user: string, received: number, sha256Ok: boolean | undefined) {
    const node = this.#elsewhere(id);
    if (!node) return super.ack(id, user, received, sha256Ok);
    return this.#forward(node, { op: "ack", id, user, received, sha256Ok });
  }

  override cancel(id: number, user: string, reason: string): void | Promise<void> {
    const node = this.#elsewhere(id);
    if (!node) return super.cancel(id, user, reason);
    return this.#forward(node, { op: "cancel", id, user, reason });
  }

  async #forward(node: string, request: Forwarded): Promise<void> {
    let reply: Uint8Array;
    try {
      reply = await this.#bus.request(
        this.#hub.subjects.node(node, "files"),
        envelope(request),
        FORWARD_TIMEOUT_MS,
      );
    } catch {
      throw new ParleyError(
        ErrorCode.NO_SUCH_TRANSFER,
        `No file transfer ${request.id} of yours is under way (its sender's node does not answer)`,
      );
    }
    const verdict = openEnvelope<Verdict>(reply).header;
    if (verdict.code !== undefined) {
      throw new ParleyError(verdict.code, verdict.message ?? "The file transfer failed");
    }
  }

  async #serve(data: Uint8Array, respond: ((data: Uint8Array) => void) | null): Promise<void> {
    let verdict: Verdict = {};
    try {
      const r = openEnvelope<Forwarded>(data).header;
      if (this.#elsewhere(r.id) !== null) {
        throw new ParleyError(ErrorCode.NO_SUCH_TRANSFER, `No file transfer ${r.id} is here`);
      }
      if (r.op === "answer") await super.answer(r.id, r.user, r.accept === true);
      else if (r.op === "ack") await super.ack(r.id, r.user, r.received, r.sha256Ok);
      else if (r.op === "cancel") await super.cancel(r.id, r.user, String(r.reason ?? ""));
      else throw new ParleyError(ErrorCode.BAD_REQUEST, "Unknown file request");
    } catch (e) {
      if (e instanceof ParleyError) verdict = { code: e.code, message: e.message };
      else {
        this.#log.error("cluster.files_failed", { error: (e as Error).message });
        verdict = { code: ErrorCode.INTERNAL, message: "The file relay failed" };
      }
    }
    try {
      respond?.(envelope(verdict));
    } catch { /* the asker is gone */ }
  }
}
