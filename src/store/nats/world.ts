/**
 * The world room's backlog in the stream `<prefix>_world` (subject `<prefix>.world`, R3 on disk),
 * which keeps the last `worldBacklog` messages itself (max_msgs, discard old): no trimming to
 * do, and a message's seq is its stream sequence, rising by one per message for good. Every node
 * mirrors the backlog in memory (recent() and entries() are synchronous, read at each login)
 * with an ordered consumer from the oldest message kept, which goes on bringing every node's
 * appends. append() resolves once JetStream acknowledged the message and this node's mirror
 * holds it, so that what a node just said is in its next INITIALIZE.
 */

import { type ConsumerMessages, DeliverPolicy } from "../../cluster/nats.ts";
import { invariant } from "../../invariant/invariant.ts";
import { storable } from "../storable.ts";
import type { ChatMessage, WorldEntry, WorldStore } from "../types.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import type { NatsStoreContext } from "./context.ts";
import { ensureStream } from "./streams.ts";

export class NatsWorld implements WorldStore {
  #entries: WorldEntry[] = [];
  #last = 0;
  #waiting: { seq: number; resolve: () => void }[] = [];
  #messages: ConsumerMessages | null = null;
  #closed = false;
  version = 0;

  private constructor(private readonly ctx: NatsStoreContext, private readonly keep: number) {}

  static async open(ctx: NatsStoreContext): Promise<NatsWorld> {
    const keep = Math.max(1, ctx.worldBacklog);
    const name = ctx.streamName("world");
    await ensureStream(ctx, {
      name,
      subjects: [ctx.subject("world")],
      max_msgs: keep,
      discard: "old",
    });
    const world = new NatsWorld(ctx, ctx.worldBacklog);
    const state = (await ctx.jsm.streams.info(name)).state;
    const consumer = await ctx.js.consumers.get(name, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, state.first_seq),
    });
    const messages = await consumer.consume();
    world.#messages = messages;
    void (async () => {
      for await (const m of messages) world.#add(m.seq, decodeMessage(m.data));
    })().catch(() => {});
    // What the stream held at the start is mirrored before the store is used.
    await world.#holds(state.last_seq);
    return world;
  }

  #add(seq: number, message: ChatMessage): void {
    if (seq <= this.#last) return; // a consumer recreated after a gap repeats nothing new
    this.#last = seq;
    if (this.keep > 0) {
      // A new array, not a change in place: entries() handed out stay as they were.
      const from = Math.max(0, this.#entries.length - this.keep + 1);
      this.#entries = [...this.#entries.slice(from), { seq, message }];
    }
    invariant(this.#entries.length <= Math.max(1, this.keep), "the backlog keeps `keep` at most");
    this.version++;
    const ready = this.#waiting.filter((w) => w.seq <= seq);
    this.#waiting = this.#waiting.filter((w) => w.seq > seq);
    for (const w of ready) w.resolve();
  }

  #holds(seq: number): Promise<void> {
    if (seq <= this.#last || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ seq, resolve }));
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
    await this.#holds(ack.seq);
  }

  recent(): ChatMessage[] {
    return this.#entries.map((e) => e.message);
  }

  entries(): readonly WorldEntry[] {
    return this.#entries;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting) w.resolve();
    this.#waiting = [];
    await this.#messages?.close();
  }
}

export async function openWorld(
  ctx: NatsStoreContext,
): Promise<WorldStore & { close(): Promise<void> }> {
  return await NatsWorld.open(ctx);
}
