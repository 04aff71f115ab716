/**
 * What every part of the NATS store shares: the connection, JetStream's client and manager,
 * and where each kind of record lives. Buckets and streams are named `<prefix>_<kind>` (the
 * prefix is "parley" in service; tests give each test its own), made with `replicas` copies on
 * first use, and read through their stream leader: a node never acts on a stale copy.
 */

import {
  jetstream,
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

/** Times a bucket's creation is asked (see #create). */
const CREATE_ATTEMPTS = 3;

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
   * nats-server 2.9.10 sometimes never answers one of several clients creating the same bucket
   * at once (nodes starting together: 5 of 16 rounds of three); the bucket exists by then, and
   * asking again finds it.
   */
  async #create(name: string, opts: Partial<KvOptions>): Promise<KV> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.kvm.create(name, opts);
      } catch (e) {
        if (!(e instanceof TimeoutError) || attempt >= CREATE_ATTEMPTS) throw e;
      }
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
