/**
 * The world room's backlog: the last N messages, kept in memory for INITIALIZE and in KV
 * (["world", seq]) so that it survives restarts. Older entries are deleted as new ones come.
 */

import type { GroupCommitter } from "./committer.ts";
import type { ChatMessage, WorldStore } from "./types.ts";

export class KvWorldStore implements WorldStore {
  #recent: { seq: number; message: ChatMessage }[] = [];

  private constructor(private readonly committer: GroupCommitter, private readonly keep: number) {}

  static async open(kv: Deno.Kv, committer: GroupCommitter, keep: number): Promise<KvWorldStore> {
    const store = new KvWorldStore(committer, keep);
    const all: { seq: number; message: ChatMessage }[] = [];
    for await (
      const e of kv.list<ChatMessage>({ prefix: ["world"] }, { reverse: true, limit: keep })
    ) {
      all.push({ seq: e.key[1] as number, message: e.value });
    }
    store.#recent = all.reverse();
    return store;
  }

  async append(message: ChatMessage): Promise<void> {
    const seq = (this.#recent.at(-1)?.seq ?? 0) + 1;
    this.#recent.push({ seq, message });
    const mutations: Deno.KvMutation[] = [{ type: "set", key: ["world", seq], value: message }];
    while (this.#recent.length > this.keep) {
      const old = this.#recent.shift()!;
      mutations.push({ type: "delete", key: ["world", old.seq] });
    }
    await this.committer.write(mutations, (message.text?.length ?? 0) * 3 + 128);
  }

  recent(): ChatMessage[] {
    return this.#recent.map((r) => r.message);
  }
}
