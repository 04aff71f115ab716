/**
 * The world room's backlog: the last N messages, kept in memory for INITIALIZE and in KV
 * (["world", seq]) so that it survives restarts. Older entries are deleted as new ones come.
 */

import type { GroupCommitter } from "./committer.ts";
import { storable } from "./storable.ts";
import type { ChatMessage, WorldEntry, WorldStore } from "./types.ts";
import { allOf, PREFIX, worldKey } from "./kv_keys.ts";

export class KvWorldStore implements WorldStore {
  #recent: WorldEntry[] = [];

  private constructor(private readonly committer: GroupCommitter, private readonly keep: number) {}

  static async open(kv: Deno.Kv, committer: GroupCommitter, keep: number): Promise<KvWorldStore> {
    const store = new KvWorldStore(committer, keep);
    const all: { seq: number; message: ChatMessage }[] = [];
    for await (
      const e of kv.list<ChatMessage>({ prefix: allOf(PREFIX.world) }, {
        reverse: true,
        limit: keep,
      })
    ) {
      all.push({ seq: e.key[1] as number, message: e.value });
    }
    store.#recent = all.reverse();
    store.#nextSeq = (store.#recent.at(-1)?.seq ?? 0) + 1;
    return store;
  }

  #nextSeq = 1;
  version = 0;

  async append(sent: ChatMessage): Promise<void> {
    // Kept for INITIALIZE and stored: with bytes of its own, not a view of a decoder's slab.
    const message = storable(sent);
    const seq = this.#nextSeq++;
    const mutations: Deno.KvMutation[] = [{ type: "set", key: worldKey(seq), value: message }];
    // Trim by key below the window, so that a commit that failed earlier leaves nothing either.
    if (seq > this.keep) mutations.push({ type: "delete", key: worldKey(seq - this.keep) });
    await this.committer.write(mutations, (message.text?.length ?? 0) * 3 + 128);
    // Only what is committed is shown at login.
    this.#recent.push({ seq, message });
    this.version++;
    this.#recent.sort((a, b) => a.seq - b.seq);
    while (this.#recent.length > this.keep) this.#recent.shift();
  }

  recent(): ChatMessage[] {
    return this.#recent.map((r) => r.message);
  }

  entries(): readonly WorldEntry[] {
    return this.#recent;
  }
}
