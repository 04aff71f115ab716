/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The chat history of one account, in IndexedDB: the server keeps none, so this is the only
 * record, as the terminal client's history files are. A received message is written with its
 * conversation's summary and its "seen" key in ONE transaction, and the chat acknowledges it
 * only once that transaction has committed: a crash between the two redelivers the message,
 * and the seen key then drops the copy.
 */

import { SeenMessages } from "../client/seen.ts";
import { committed, done, openDatabase } from "./idb.ts";

export interface HistoryEntry {
  /** The sender's message id, hex. */
  id: string;
  from: string;
  /** ISO time the server gave the message. */
  time: string;
  kind: "text" | "image" | "note";
  text: string;
  /** An image's bytes, kept so that a reload shows it again. */
  image?: Uint8Array;
  /** An image's file name, for saving it. */
  name?: string;
}

export interface ConversationInfo {
  key: string;
  label: string;
  last: HistoryEntry;
  /** Messages received since the conversation was last opened. */
  unread: number;
}

interface StoredEntry extends HistoryEntry {
  conv: string;
}

/** Room in the link's duplicate filter: ids of messages stored and of those still arriving. */
const SEEN_CAPACITY = 100_000;
const VERSION = 1;

/** The database of one account; IndexedDB is per origin, so per server. */
export function historyDatabaseName(username: string): string {
  return `parley-history-${username.toLowerCase()}`;
}

/** A stored message's key, as SeenMessages spells it: sender lower-cased, id in hex. */
function storedKey(from: string, idHex: string): string {
  return `${from.toLowerCase()}/${idHex}`;
}

export class HistoryStore {
  readonly #index = new Map<string, ConversationInfo>();
  /** "sender/id" of every message stored: the authority on what is a redelivery. */
  readonly #stored = new Set<string>();
  /**
   * For the Link (ConnectOptions.seen), filled with the stored ids, so that its connections drop
   * a redelivery before the app sees it. A connection made before the account was known has a
   * filter of its own, so the chat asks has() as well.
   */
  readonly seen = new SeenMessages(SEEN_CAPACITY);

  /**
   * The summary updates, one at a time: each reads a conversation's summary, waits for its
   * transaction, then sets it, so two at once would lose one (a read mark undone by a message
   * counted against the old count).
   */
  #turn: Promise<unknown> = Promise.resolve();

  private constructor(private readonly db: IDBDatabase) {}

  #inTurn<T>(update: () => Promise<T>): Promise<T> {
    const result = this.#turn.then(update);
    this.#turn = result.catch(() => {});
    return result;
  }

  static async open(username: string): Promise<HistoryStore> {
    const db = await openDatabase(historyDatabaseName(username), VERSION, (db) => {
      const messages = db.createObjectStore("messages", { autoIncrement: true });
      messages.createIndex("conv", "conv");
      db.createObjectStore("conversations", { keyPath: "key" });
      db.createObjectStore("seen");
    });
    const store = new HistoryStore(db);
    const tx = db.transaction(["conversations", "seen"], "readonly");
    const [convs, keys] = await Promise.all([
      done(tx.objectStore("conversations").getAll()) as Promise<ConversationInfo[]>,
      done(tx.objectStore("seen").getAllKeys()) as Promise<IDBValidKey[]>,
    ]);
    for (const c of convs) store.#index.set(c.key, c);
    for (const key of keys) {
      const [from, id] = String(key).split("/");
      if (!from || !id) continue;
      store.#stored.add(String(key));
      store.seen.first(from, Uint8Array.fromHex(id));
    }
    return store;
  }

  /**
   * Adds an entry to a conversation, with the key that recognises its redelivery; resolves once
   * committed. `incoming` counts it as unread.
   */
  append(key: string, label: string, entry: HistoryEntry, incoming: boolean): Promise<void> {
    return this.#inTurn(() => this.#append(key, label, entry, incoming));
  }

  async #append(key: string, label: string, entry: HistoryEntry, incoming: boolean): Promise<void> {
    const info = this.#index.get(key);
    const next: ConversationInfo = {
      key,
      label,
      last: { ...entry, image: undefined },
      unread: (info?.unread ?? 0) + (incoming ? 1 : 0),
    };
    const tx = this.db.transaction(["messages", "conversations", "seen"], "readwrite");
    tx.objectStore("messages").add({ ...entry, conv: key } satisfies StoredEntry);
    tx.objectStore("conversations").put(next);
    const stored = storedKey(entry.from, entry.id);
    if (entry.kind !== "note") tx.objectStore("seen").put(1, stored);
    await committed(tx);
    this.#index.set(key, next);
    if (entry.kind !== "note") {
      this.#stored.add(stored);
      this.seen.first(entry.from, Uint8Array.fromHex(entry.id));
    }
  }

  /** Whether the message `id` from `from` is stored (so a copy of it is a redelivery). */
  has(from: string, id: Uint8Array): boolean {
    return this.#stored.has(storedKey(from, id.toHex()));
  }

  /** The last `n` entries of a conversation, oldest first. */
  async last(key: string, n: number): Promise<HistoryEntry[]> {
    const tx = this.db.transaction("messages", "readonly");
    const index = tx.objectStore("messages").index("conv");
    const out: HistoryEntry[] = [];
    await new Promise<void>((resolve, reject) => {
      const request = index.openCursor(IDBKeyRange.only(key), "prev");
      request.onerror = () => reject(request.error);
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor || out.length >= n) return resolve();
        const { conv: _, ...entry } = cursor.value as StoredEntry;
        out.push(entry);
        cursor.continue();
      };
    });
    return out.reverse();
  }

  /** Conversations, most recent first. */
  recent(): ConversationInfo[] {
    return [...this.#index.values()].sort((a, b) => b.last.time.localeCompare(a.last.time));
  }

  info(key: string): ConversationInfo | undefined {
    return this.#index.get(key);
  }

  markRead(key: string): Promise<void> {
    return this.#inTurn(() => this.#markRead(key));
  }

  async #markRead(key: string): Promise<void> {
    const info = this.#index.get(key);
    if (!info || info.unread === 0) return;
    const next = { ...info, unread: 0 };
    const tx = this.db.transaction("conversations", "readwrite");
    tx.objectStore("conversations").put(next);
    await committed(tx);
    this.#index.set(key, next);
  }

  close(): void {
    this.db.close();
  }
}
