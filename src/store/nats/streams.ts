/** Streams of the NATS store: made on first use, with the store's replicas, on disk. */

import { type StreamConfig, TimeoutError } from "../../cluster/nats.ts";
import { isStreamNotFound, type NatsStoreContext } from "./context.ts";

type Config = Partial<StreamConfig> & { name: string; subjects: string[] };

/**
 * Makes the stream, or brings an existing one to `config` (a node started with another world
 * backlog changes it for all: the stream is the one truth).
 */
export async function ensureStream(ctx: NatsStoreContext, config: Config): Promise<void> {
  const full = {
    num_replicas: ctx.replicas,
    storage: "file",
    ...config,
  } as Partial<StreamConfig> & { name: string };
  await ctx.creating(async (jsm) => {
    try {
      await jsm.streams.info(config.name);
    } catch (e) {
      if (!isStreamNotFound(e)) throw e;
      try {
        await jsm.streams.add(full);
        return;
      } catch (e) {
        if (e instanceof TimeoutError) throw e;
        // Made by another node meanwhile: brought to this config below.
      }
    }
    await jsm.streams.update(config.name, full);
  });
  await ctx.led(config.name);
}
