/**
 * Resume tokens in Deno KV, stored only as SHA-256 hashes:
 *   ["token", hash hex] → TokenRecord         (looked up on RESUME)
 *   ["user_token", user, hash hex] → expires  (listed to revoke or prune a user's tokens)
 * Both carry KV's expireIn, so expired tokens disappear without a sweeper.
 */

import { randomBytes, sha256 } from "../crypto/keys.ts";
import { TOKEN_BYTES } from "../protocol/messages.ts";
import { ReadCache } from "./read_cache.ts";
import type { IssuedToken, TokenRecord, TokenStore } from "./types.ts";

/**
 * Token records kept in memory: every RESUME looks one up. Unknown tokens are not kept, so
 * guessing cannot push the real ones out.
 */
const CACHED_TOKENS = 20_000;

function idOf(token: Uint8Array): string {
  return sha256(token).toHex();
}

export class KvTokenStore implements TokenStore {
  readonly #records = new ReadCache<string, TokenRecord | null>(CACHED_TOKENS, (r) => r !== null);

  constructor(private readonly kv: Deno.Kv) {}

  async issue(user: string, ttlMs: number, maxPerUser: number): Promise<IssuedToken> {
    const token = randomBytes(TOKEN_BYTES);
    const id = idOf(token);
    const now = new Date();
    const expires = new Date(now.getTime() + ttlMs);
    const record: TokenRecord = { user, created: now, expires };
    await this.kv.atomic()
      .set(["token", id], record, { expireIn: ttlMs })
      .set(["user_token", user, id], expires, { expireIn: ttlMs })
      .commit();
    // Not cached here: most tokens are never used to resume, and each idle session would hold
    // its record; the first RESUME reads it and keeps it.
    await this.#prune(user, maxPerUser);
    return { token, expires };
  }

  async #prune(user: string, maxPerUser: number): Promise<void> {
    const entries: { id: string; expires: Date }[] = [];
    for await (const e of this.kv.list<Date>({ prefix: ["user_token", user] })) {
      entries.push({ id: e.key[2] as string, expires: e.value });
    }
    if (entries.length <= maxPerUser) return;
    // Same TTL for all, so the earliest expiry is the oldest token.
    entries.sort((a, b) => a.expires.getTime() - b.expires.getTime());
    const op = this.kv.atomic();
    const pruned = entries.slice(0, entries.length - maxPerUser);
    for (const { id } of pruned) op.delete(["token", id]).delete(["user_token", user, id]);
    try {
      await op.commit();
    } finally {
      for (const { id } of pruned) this.#records.forget(id);
    }
  }

  async check(token: Uint8Array): Promise<TokenRecord | null> {
    const id = idOf(token);
    const record = await this.#records.get(
      id,
      async () => (await this.kv.get<TokenRecord>(["token", id])).value,
    );
    // expireIn deletes lazily, so the expiry is checked here as well.
    if (!record || record.expires.getTime() <= Date.now()) return null;
    return record;
  }

  async revoke(token: Uint8Array): Promise<void> {
    const id = idOf(token);
    const record = (await this.kv.get<TokenRecord>(["token", id])).value;
    const op = this.kv.atomic().delete(["token", id]);
    if (record) op.delete(["user_token", record.user, id]);
    try {
      await op.commit();
    } finally {
      this.#records.forget(id);
    }
  }

  async revokeAll(user: string): Promise<void> {
    let op = this.kv.atomic();
    let count = 0;
    const ids: string[] = [];
    try {
      for await (const e of this.kv.list({ prefix: ["user_token", user] })) {
        const id = e.key[2] as string;
        ids.push(id);
        op.delete(["token", id]).delete(e.key);
        // Stay well under KV's 1000 mutations per atomic commit.
        if (++count % 400 === 0) {
          await op.commit();
          op = this.kv.atomic();
        }
      }
      await op.commit();
    } finally {
      for (const id of ids) this.#records.forget(id);
    }
  }
}
