/**
 * The world room's backlog in the stream `<prefix>_world` (subject `<prefix>.world`, R3 on disk),
 * which keeps the last `worldBacklog` messages itself (max_msgs, discard old): no trimming to
 * do, and a message's seq is its stream sequence, rising by one per message for good. Every node
 * mirrors the backlog in memory (recent() and entries() are synchronous, read at each login)
 * with an ordered consumer from the oldest message kept, which goes on bringing every node's
 * appends. append() resolves once JetStream acknowledged the message and this node's mirror
 * holds it, so that what a node just said is in its next INITIALIZE.
 *
 * The ordered consumer repairs its own gaps, but its iterator can still end (an error, the
 * consumer gone for good): the mirror then makes a new one from the last seq it holds. An
 * append() whose message the mirror does not show within MIRROR_WAIT_MS resolves all the same:
 * the message is stored (other nodes' backlogs have it, and this one's once its consumer is
 * back), so its sender is told SENT rather than asked to send it twice.
 */

import { type ConsumerMessages, DeliverPolicy } from "../../cluster/nats.ts";
import { invariant } from "../../invariant/invariant.ts";
import { storable } from "../storable.ts";
import type { ChatMessage, WorldEntry, WorldStore } from "../types.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import type { NatsStoreContext } from "./context.ts";
import { ensureStream } from "./streams.ts";

/**
 * How long append() waits for the mirror to show its message. This and the restarts' waits are
 * network time (setTimeout), not the store's clock, which tests drive.
 */
export const MIRROR_WAIT_MS = 10_000;
/** Between attempts to make the mirror's consumer again after it ended. */
const RESTART_MS = [100, 250, 500, 1000, 2000];

interface Waiter {
  seq: number;
  /** True: the mirror shows the seq; false: it did not within the wait. */
  resolve: (shown: boolean) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class NatsWorld implements WorldStore {
  #entries: WorldEntry[] = [];
  #last = 0;
  #waiting: Waiter[] = [];
  #messages: ConsumerMessages | null = null;
  #closed = false;
  /** Restarts since the mirror last received a message: the next one waits longer. */
  #failures = 0;
  version = 0;
  /** Appends stored that the mirror did not show in time (its consumer down), for tests. */
  lagging = 0;
  /** Consumers the mirror made (1 + restarts after one ended), for tests. */
  consumers = 0;
  /** MIRROR_WAIT_MS; tests shorten it. */
  mirrorWaitMs = MIRROR_WAIT_MS;
  /** Test seam: false leaves a consumer that ended down. */
  restarts = true;

  private constructor(
    private readonly ctx: NatsStoreContext,
    private readonly keep: number,
    private readonly name: string,
  ) {}

  static async open(ctx: NatsStoreContext): Promise<NatsWorld> {
    const keep = Math.max(1, ctx.worldBacklog);
    const name = ctx.streamName("world");
    await ensureStream(ctx, {
      name,
      subjects: [ctx.subject("world")],
      max_msgs: keep,
      discard: "old",
    });
    const world = new NatsWorld(ctx, ctx.worldBacklog, name);
    const state = (await ctx.jsm.streams.info(name)).state;
    await world.#follow(Math.max(1, state.first_seq));
    // What the stream held at the start is mirrored before the store is used.
    await world.#holds(state.last_seq);
    return world;
  }

  /** Makes an ordered consumer from `from` and feeds the mirror until it ends; then again. */
  async #follow(from: number): Promise<void> {
    const consumer = await this.ctx.js.consumers.get(this.name, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    });
    const messages = await consumer.consume();
    this.consumers++;
    this.#messages = messages;
    void (async () => {
      try {
        for await (const m of messages) this.#add(m.seq, decodeMessage(m.data));
      } catch { /* ended: made again below */ }
      if (!this.#closed && this.#messages === messages && this.restarts) void this.#restart();
    })();
  }

  /** After the consumer ended: a new one from the seq after the last one mirrored. */
  async #restart(): Promise<void> {
    while (!this.#closed) {
      // Counted until a message arrives, so a consumer that ends as soon as it is made does not
      // spin.
      const wait = RESTART_MS[Math.min(this.#failures++, RESTART_MS.length - 1)];
      await new Promise<void>((r) => setTimeout(r, wait));
      if (this.#closed) return;
      try {
        // A seq the stream no longer keeps starts the consumer at its first one.
        await this.#follow(this.#last + 1);
        return;
      } catch { /* tried again after a longer wait */ }
    }
  }

  /** Test seam: ends the mirror's consumer as an error would. */
  async endConsumer(): Promise<void> {
    await this.#messages?.close();
  }

  #add(seq: number, message: ChatMessage): void {
    if (seq <= this.#last) return; // a consumer recreated after a gap repeats nothing new
    this.#last = seq;
    this.#failures = 0;
    if (this.keep > 0) {
      // A new array, not a change in place: entries() handed out stay as they were.
      const from = Math.max(0, this.#entries.length - this.keep + 1);
      this.#entries = [...this.#entries.slice(from), { seq, message }];
    }
    invariant(this.#entries.length <= Math.max(1, this.keep), "the backlog keeps `keep` at most");
    this.version++;
    const ready = this.#waiting.filter((w) => w.seq <= seq);
    this.#waiting = this.#waiting.filter((w) => w.seq > seq);
    for (const w of ready) {
      clearTimeout(w.timer);
      w.resolve(true);
    }
  }

  /** Whether the mirror holds `seq`, at once or within mirrorWaitMs. */
  #holds(seq: number): Promise<boolean> {
    if (seq <= this.#last || this.#closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w: Waiter = {
        seq,
        resolve,
        timer: setTimeout(() => {
          this.#waiting = this.#waiting.filter((x) => x !== w);
          resolve(false);
        }, this.mirrorWaitMs),
      };
      this.#waiting.push(w);
    });
  }

  async append(sent: ChatMessage): Promise<void> {
    const ack = await this.ctx.js.publish(
      this.ctx.subject("world"),
      encodeMessage(storable(sent)),
      {
        msgID: crypto.randomUUID(),
        retries: 3,
      },
    );
    if (!await this.#holds(ack.seq)) this.lagging++;
  }

  recent(): ChatMessage[] {
    return this.#entries.map((e) => e.message);
  }

  entries(): readonly WorldEntry[] {
    return this.#entries;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting) {
      clearTimeout(w.timer);
      w.resolve(true);
    }
    this.#waiting = [];
    await this.#messages?.close();
  }
}

export async function openWorld(
  ctx: NatsStoreContext,
): Promise<WorldStore & { close(): Promise<void> }> {
  return await NatsWorld.open(ctx);
}
