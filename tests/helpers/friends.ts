/** Friendship needs both sides: each adds the other. */

import type { ParleyClient } from "../../src/client/client.ts";

/** Makes `a` (named `aName`) and `b` (named `bName`) friends: a asks, b answers. */
export async function befriend(
  a: ParleyClient,
  aName: string,
  b: ParleyClient,
  bName: string,
): Promise<void> {
  await a.addFriend(bName);
  await b.addFriend(aName);
}
