/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * What the page remembers about this origin's server, outside any account: the server key
 * pinned on first contact, the device secret, and the session to resume after a reload.
 * IndexedDB is per origin already, so one origin is one server.
 */

import type { PinStore } from "../client/pins.ts";
import { committed, done, openDatabase } from "./idb.ts";

const DB_NAME = "parley";
const STORE = "settings";

/** The session a reload resumes without the password; logout deletes it. */
export interface SavedSession {
  username: string;
  /** The latest resume token, hex: the server replaces it at every RESUME. */
  token: string;
}

export class SettingsStore {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(): Promise<SettingsStore> {
    return new SettingsStore(
      await openDatabase(DB_NAME, 1, (db) => db.createObjectStore(STORE)),
    );
  }

  async get<T>(key: string): Promise<T | undefined> {
    const tx = this.db.transaction(STORE, "readonly");
    return await done(tx.objectStore(STORE).get(key)) as T | undefined;
  }

  async put(key: string, value: unknown): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put(value, key);
    await committed(tx);
  }

  async delete(key: string): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).delete(key);
    await committed(tx);
  }

  /** This browser's secret for the device id LOGIN sends (one resume token per device). */
  async deviceSecret(): Promise<Uint8Array> {
    const saved = await this.get<Uint8Array>("device-secret");
    if (saved instanceof Uint8Array && saved.length === 32) return saved;
    const secret = crypto.getRandomValues(new Uint8Array(32));
    await this.put("device-secret", secret);
    return secret;
  }

  session(): Promise<SavedSession | undefined> {
    return this.get<SavedSession>("session");
  }

  saveSession(session: SavedSession): Promise<void> {
    return this.put("session", session);
  }

  forgetSession(): Promise<void> {
    return this.delete("session");
  }

  async lastUser(): Promise<string> {
    return await this.get<string>("last-user") ?? "";
  }

  rememberUser(name: string): Promise<void> {
    return this.put("last-user", name);
  }
}

/**
 * Server keys pinned per origin (trust on first use), kept in IndexedDB.
 */
export class PinnedKeys implements PinStore {
  constructor(private readonly settings: SettingsStore) {}

  async lookup(addr: string): Promise<Uint8Array | null> {
    const key = await this.settings.get<Uint8Array>(`pin:${addr}`);
    return key instanceof Uint8Array ? key : null;
  }

  async remember(addr: string, key: Uint8Array): Promise<void> {
    await this.settings.put(`pin:${addr}`, new Uint8Array(key));
  }

  howToForget(addr: string): string {
    return `If you trust the change, clear this browser's site data for ${addr}`;
  }
}
