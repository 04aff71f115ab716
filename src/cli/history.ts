/**
 * Local chat history, per server and account, in the user's data dir: one JSON-lines file per
 * conversation and an index of conversations by last activity. The server keeps no history,
 * so this is the only record. It also remembers message keys, so a redelivery after a client
 * crash is recognised and not shown twice.
 */

import { join } from "node:path";
import { SeenMessages } from "../client/seen.ts";

export interface HistoryEntry {
  /** Sender's message id, hex. */
  id: string;
  from: string;
  time: string;
  kind: "text" | "image" | "file" | "note";
  text: string;
  /** Where an image or file was saved. */
  path?: string;
}

export interface ConversationInfo {
  key: string;
  label: string;
  last: HistoryEntry;
  /** Messages received since the conversation was last opened. */
  unread: number;
}

/** How many remembered message keys are loaded back at start. */
const SEEN_KEEP = 50_000;

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, (c) => `%${c.codePointAt(0)!.toString(16)}`);
}

export class History {
  #index = new Map<string, ConversationInfo>();
  /** Messages seen, for the link to drop redeliveries: starts as those recorded earlier. */
  readonly seen = new SeenMessages(SEEN_KEEP * 2);
  /**
   * Messages recorded, here or in an earlier run. Not `seen`: a client notes a message there as
   * it arrives, before it is recorded; and the first connection of a run is made before the
   * history is open, with a filter of its own that knows none of these.
   */
  readonly #recorded = new SeenMessages(SEEN_KEEP * 2);

  private constructor(readonly dir: string) {}

  /** Opens (creating) the history of `user` on `server` ("host:port"). */
  static async open(dataDir: string, server: string, user: string): Promise<History> {
    const h = new History(join(dataDir, "history", safe(server), safe(user.toLowerCase())));
    await Deno.mkdir(h.dir, { recursive: true, mode: 0o700 });
    try {
      const index = JSON.parse(
        await Deno.readTextFile(join(h.dir, "index.json")),
      ) as ConversationInfo[];
      for (const c of index) h.#index.set(c.key, c);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    try {
      const lines = (await Deno.readTextFile(join(h.dir, "seen.txt"))).split("\n").filter(Boolean);
      for (const key of lines.slice(-SEEN_KEEP)) {
        const [from, id] = key.split("/");
        h.seen.first(from, Uint8Array.fromHex(id));
        h.#recorded.first(from, Uint8Array.fromHex(id));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return h;
  }

  #file(key: string): string {
    return join(this.dir, `${safe(key)}.jsonl`);
  }

  /** Adds an entry to a conversation; `incoming` counts it as unread. */
  async append(key: string, label: string, entry: HistoryEntry, incoming: boolean): Promise<void> {
    await Deno.writeTextFile(this.#file(key), JSON.stringify(entry) + "\n", {
      append: true,
      mode: 0o600,
    });
    const info = this.#index.get(key);
    this.#index.set(key, {
      key,
      label,
      last: entry,
      unread: (info?.unread ?? 0) + (incoming ? 1 : 0),
    });
    await this.#saveIndex();
  }

  /** Whether a message was recorded already (a redelivery of one whose ACK was lost). */
  recorded(from: string, id: Uint8Array): boolean {
    return this.#recorded.has(from, id);
  }

  /** Records that a message was received, so it is never shown twice. */
  async remember(from: string, id: Uint8Array): Promise<void> {
    this.#recorded.first(from, id);
    await Deno.writeTextFile(join(this.dir, "seen.txt"), `${SeenMessages.key(from, id)}\n`, {
      append: true,
      mode: 0o600,
    });
  }

  /**
   * One index write at a time: two at once (messages arriving together) shared the temp file,
   * and the second rename found it gone ("Could not write local history").
   */
  #saveIndex(): Promise<void> {
    const write = this.#indexSaved.then(() => this.#writeIndex());
    this.#indexSaved = write.catch(() => {});
    return write;
  }

  #indexSaved: Promise<void> = Promise.resolve();

  async #writeIndex(): Promise<void> {
    const tmp = join(this.dir, "index.json.tmp");
    await Deno.writeTextFile(tmp, JSON.stringify([...this.#index.values()]), { mode: 0o600 });
    await Deno.rename(tmp, join(this.dir, "index.json"));
  }

  /** The last `n` entries of a conversation, oldest first. */
  async last(key: string, n: number): Promise<HistoryEntry[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#file(key));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    return text.split("\n").filter(Boolean).slice(-n).map((line) =>
      JSON.parse(line) as HistoryEntry
    );
  }

  /** Conversations, most recent first. */
  recent(): ConversationInfo[] {
    return [...this.#index.values()].sort((a, b) => b.last.time.localeCompare(a.last.time));
  }

  async markRead(key: string): Promise<void> {
    const info = this.#index.get(key);
    if (!info || info.unread === 0) return;
    info.unread = 0;
    await this.#saveIndex();
  }
}
