/** Test content and what clients receive: deterministic bytes, digests, PASS bodies. */

import * as nc from "node:crypto";
import type { ParleyClient } from "../../src/client/client.ts";
import type { Message } from "../../src/protocol/message_codec.ts";
import { MsgType } from "../../src/protocol/messages.ts";

/** Deterministic bytes that do not compress (xorshift), without megabytes of getRandomValues. */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** SHA-256 as hex. */
export const sha = (b: Uint8Array) => nc.createHash("sha256").update(b).digest("hex");

export type Body = Record<string, unknown>;
export const body = (m: Message) => m.body as Body;

/** The next `n` PASS pushes `c` gets, as bodies. */
export async function passes(c: ParleyClient, n: number): Promise<Body[]> {
  const out: Body[] = [];
  for (let i = 0; i < n; i++) out.push(body(await c.nextEvent(MsgType.PASS)));
  return out;
}
