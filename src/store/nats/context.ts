/**
 * What every part of the NATS store shares: the connection, JetStream's client and manager,
 * and where each kind of record lives. Buckets and streams are named `<prefix>_<kind>` (the
 * prefix is "parley" in service; tests give each test its own), made with `replicas` copies on
 * first use, and read through their stream leader: a node never acts on a stale copy.
 */

import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type KV,
  Kvm,
  type KvOptions,
  type NatsConnection,
  TimeoutError,
} from "../../cluster/nats.ts";
import type { Clock } from "../../clock/clock.ts";

/**
 * The deadline of each request that makes (or looks up) a bucket or stream, asked again until
 * CREATE_DEADLINE_MS. Short: nats-server 2.9.10 sometimes never answers one of several clients
 * creating the same stream at once (nodes starting together), and each such request would
 * otherwise cost the whole request timeout (10 s). Asking again is safe: a stream that exists
 * with this config is found, or "made" again as it is.
 */
const CREATE_TIMEOUT_MS = 2000;
const CREATE_DEADLINE_MS = 60_000;
/** Between two looks at a new stream's leader. */
const LEADER_POLL_MS = 50;

export interface NatsStoreOptions {
  /** World room messages kept for users who log in later. */
  worldBacklog: number;
  /** Token and invite expiry; the system's if unset. */
  clock?: Clock;
  /** Names every bucket and stream: `<prefix>_users`, …; "parley" by default. */
  prefix?: string;
  /** Copies of every record; 3 in a cluster (survives one NATS server), 1 on one server. */
  replicas?: number;
}

export class NatsStoreContext {
  readonly js: JetStreamClient;
  readonly kvm: Kvm;
  /** For making buckets and streams only: a short deadline per request (see #creating). */
  readonly #makerJs: JetStreamClient;
  readonly #buckets = new Map<string, Promise<KV>>();

  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly prefix: string,
    readonly replicas: number,
    readonly clock: Clock,
    readonly worldBacklog: number,
  ) {
    this.js = jetstream(nc, { timeout: 10_000 });
    this.kvm = new Kvm(this.js);
    this.#makerJs = jetstream(nc, { timeout: CREATE_TIMEOUT_MS });
  }

  static async open(nc: NatsConnection, opts: NatsStoreOptions & { clock: Clock }) {
    const jsm = await jetstreamManager(nc, { timeout: 10_000 });
    return new NatsStoreContext(
      nc,
      jsm,
      opts.prefix ?? "parley",
      opts.replicas ?? 3,
      opts.clock,
      opts.worldBacklog,
    );
  }

  /** The name of a stream of this store (`<prefix>_<kind>`). */
  streamName(kind: string): string {
    return `${this.prefix}_${kind}`;
  }

  /** A subject of this store: `<prefix>.<kind>.<tokens…>`. */
  subject(kind: string, ...tokens: string[]): string {
    return [this.prefix, kind, ...tokens].join(".");
  }

  /** The bucket `<prefix>_<kind>`, made on first use; one handle per bucket per store. */
  bucket(kind: string, opts: Partial<KvOptions> = {}): Promise<KV> {
    let kv = this.#buckets.get(kind);
    if (!kv) {
      kv = this.#create(`${this.prefix}_${kind}`, {
        replicas: this.replicas,
        history: 1,
        // Reads go to the stream's leader: a replica may lag a write made through another node.
        allow_direct: false,
        ...opts,
      });
      kv.catch(() => this.#buckets.delete(kind));
      this.#buckets.set(kind, kv);
    }
    return kv;
  }

  /**
   * The bucket `<prefix>_<kind>` with the maker's short request deadline: for the first reads
   * after nodes made it together, which nats-server 2.9.10 sometimes leaves unanswered even once
   * the stream has a leader. Pair each request with `creating`, which asks again.
   */
  async quickBucket(kind: string): Promise<KV> {
    await this.bucket(kind);
    return await new Kvm(this.#makerJs).open(`${this.prefix}_${kind}`);
  }

  /**
   * Makes the bucket (or finds it), waits for its stream's leader, and opens it with the usual
   * request deadline (the maker's short one is for making only).
   */
  async #create(name: string, opts: Partial<KvOptions>): Promise<KV> {
    const maker = new Kvm(this.#makerJs);
    await this.creating(() => maker.create(name, { ...opts }));
    await this.led(`KV_${name}`);
    return await this.kvm.open(name, { ...opts });
  }

  /**
   * Runs `make` (idempotent: it makes or finds a bucket or stream) with the maker's manager,
   * again while it times out, until CREATE_DEADLINE_MS.
   */
  async creating<T>(make: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
    const deadline = Date.now() + CREATE_DEADLINE_MS;
    const jsm = await this.#makerJs.jetstreamManager();
    while (true) {
      try {
        return await make(jsm);
      } catch (e) {
        if (!(e instanceof TimeoutError) || Date.now() > deadline) throw e;
      }
    }
  }

  /**
   * Resolves once the stream has a leader. A client that asks to make a stream another client
   * is making at that moment may be answered at once (nats-server 2.9.10), before the stream's
   * replicas have elected a leader, or even before every server knows of it; until then a read
   * goes unanswered and times out (10 s) instead of failing fast.
   */
  async led(stream: string): Promise<void> {
    const deadline = Date.now() + CREATE_DEADLINE_MS;
    while (true) {
      const info = await this.creating((jsm) => jsm.streams.info(stream)).catch((e) => {
        if (isStreamNotFound(e)) return null;
        throw e;
      });
      // A single server without clustering names no leader, and needs none.
      if (info && (!info.cluster || info.cluster.leader)) return;
      if (Date.now() > deadline) {
        throw new Error(`Stream ${stream} has no leader after ${CREATE_DEADLINE_MS} ms`);
      }
      await new Promise((r) => setTimeout(r, LEADER_POLL_MS));
    }
  }

  /** Every bucket and stream of this store (tests dispose of them). */
  async names(): Promise<string[]> {
    const out: string[] = [];
    for await (const s of this.jsm.streams.list()) {
      const name = s.config.name;
      if (name.startsWith(`${this.prefix}_`) || name.startsWith(`KV_${this.prefix}_`)) {
        out.push(name);
      }
    }
    return out;
  }
}

/** Whether `e` is JetStream's "stream not found". */
export function isStreamNotFound(e: unknown): boolean {
  return e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound;
}
