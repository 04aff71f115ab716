/**
 * Resume tokens in Deno KV, stored only as SHA-256 hashes and grouped in families (a device's
 * lineage: one password login, then each RESUME's replacement):
 *   ["token_family", family] → FamilyEntry     (which token is current; the truth of validity)
 *   ["token", hash hex] → TokenRecord          (looked up on RESUME: the token's family)
 *   ["user_token", user, family] → expires     (listed to revoke or prune a user's families)
 * All carry KV's expireIn up to the family's end, so expired ones disappear without a sweeper.
 * A token is valid only while its family's entry names it (current, or previous within the
 * grace), so revoking a family is deleting that one entry; its token entries go with it.
 */

import { randomBytes, sha256 } from "../crypto/keys.ts";
import { TOKEN_BYTES } from "../protocol/messages.ts";
import type { IssuedToken, ResumeOutcome, TokenFamily, TokenRecord, TokenStore } from "./types.ts";

/**
 * Replaced tokens remembered per family, so that one presented again is seen as reuse (a
 * leak) rather than as unknown. Bounded so that a reconnecting client cannot grow its family
 * without end; a token older than this is merely unknown.
 */
const RETIRED_KEPT = 8;

interface FamilyEntry extends TokenFamily {
  /** Hash of the token that resumes now. */
  current: string;
  /** Hash of the token `current` replaced, valid for the grace after `rotated`. */
  previous: string | null;
  /** When `previous` was replaced. */
  rotated: Date | null;
  /** Hashes of older tokens, oldest first, at most RETIRED_KEPT. */
  retired: string[];
}

function hashOf(token: Uint8Array): string {
  return sha256(token).toHex();
}

/** One family per device and user; the id says nothing of the device without the user. */
function deviceFamily(user: string, device: Uint8Array): string {
  return sha256(new TextEncoder().encode(`parley-device\0${user}\0`), device).toHex();
}

function publicView(f: FamilyEntry): TokenFamily {
  const { user, id, device, rotates, created, expires } = f;
  return { user, id, device, rotates, created, expires };
}

export class KvTokenStore implements TokenStore {
  readonly #epochs = new Map<string, number>();

  constructor(private readonly kv: Deno.Kv) {}

  epoch(user: string): number {
    return this.#epochs.get(user) ?? 0;
  }

  #bump(user: string): void {
    this.#epochs.set(user, this.epoch(user) + 1);
  }

  async issue(
    user: string,
    ttlMs: number,
    maxPerUser: number,
    opts: { device?: Uint8Array | null; rotates?: boolean } = {},
  ): Promise<IssuedToken> {
    if (!(ttlMs > 0)) throw new RangeError(`A token's life must be positive, got ${ttlMs}`);
    const id = opts.device ? deviceFamily(user, opts.device) : randomBytes(16).toHex();
    // The device's earlier family ends: a device keeps one token.
    if (opts.device) await this.revokeFamily(user, id);
    const token = randomBytes(TOKEN_BYTES);
    const hash = hashOf(token);
    const now = new Date();
    const expires = new Date(now.getTime() + ttlMs);
    const family: FamilyEntry = {
      user,
      id,
      device: opts.device ?? null,
      rotates: opts.rotates ?? true,
      created: now,
      expires,
      current: hash,
      previous: null,
      rotated: null,
      retired: [],
    };
    const record: TokenRecord = { user, family: id, expires };
    await this.kv.atomic()
      .set(["token_family", id], family, { expireIn: ttlMs })
      .set(["token", hash], record, { expireIn: ttlMs })
      .set(["user_token", user, id], expires, { expireIn: ttlMs })
      .commit();
    await this.#prune(user, maxPerUser);
    return { token, expires, family: id };
  }

  async #prune(user: string, maxPerUser: number): Promise<void> {
    const entries: { id: string; expires: Date }[] = [];
    for await (const e of this.kv.list<Date>({ prefix: ["user_token", user] })) {
      entries.push({ id: e.key[2] as string, expires: e.value });
    }
    if (entries.length <= maxPerUser) return;
    // Same TTL for all, so the earliest expiry is the oldest family.
    entries.sort((a, b) => a.expires.getTime() - b.expires.getTime());
    try {
      for (const { id } of entries.slice(0, entries.length - maxPerUser)) {
        await this.#delete(user, id);
      }
    } finally {
      this.#bump(user);
    }
  }

  async resume(token: Uint8Array, graceMs: number): Promise<ResumeOutcome> {
    const hash = hashOf(token);
    const record = (await this.kv.get<TokenRecord>(["token", hash])).value;
    if (!record) return { kind: "unknown" };
    // Taken before the family is read: a revocation that commits after this changes it.
    const epoch = this.epoch(record.user);
    while (true) {
      const entry = await this.kv.get<FamilyEntry>(["token_family", record.family]);
      const f = entry.value;
      const now = Date.now();
      // expireIn deletes lazily, so the expiry is checked here as well.
      if (!f || f.user !== record.user || f.expires.getTime() <= now) return { kind: "unknown" };
      if (hash === f.current && !f.rotates) {
        return { kind: "ok", family: publicView(f), token, epoch };
      }
      let next: FamilyEntry;
      const fresh = randomBytes(TOKEN_BYTES);
      if (hash === f.current) {
        const retired = f.previous === null ? f.retired : [...f.retired, f.previous];
        next = { ...f, current: hashOf(fresh), previous: hash, rotated: new Date(now), retired };
      } else if (
        hash === f.previous && f.rotated !== null && now - f.rotated.getTime() < graceMs
      ) {
        // The client never got the successor (its LG_OK was lost): replace that one instead.
        // `rotated` stays, so the grace is counted from the first replacement, not renewed.
        next = { ...f, current: hashOf(fresh), retired: [...f.retired, f.current] };
      } else {
        // A replaced token came back: its family leaked. End it, thief and owner alike.
        await this.revokeFamily(f.user, f.id);
        return { kind: "reused", family: publicView(f) };
      }
      const dropped = next.retired.slice(0, Math.max(0, next.retired.length - RETIRED_KEPT));
      next.retired = next.retired.slice(dropped.length);
      const ttlMs = f.expires.getTime() - now;
      const op = this.kv.atomic()
        .check(entry)
        .set(["token_family", f.id], next, { expireIn: ttlMs })
        .set(["token", next.current], { user: f.user, family: f.id, expires: f.expires }, {
          expireIn: ttlMs,
        });
      for (const old of dropped) op.delete(["token", old]);
      // Another RESUME of the family or a revocation came first: look again.
      if (!(await op.commit()).ok) continue;
      return { kind: "ok", family: publicView(next), token: fresh, epoch };
    }
  }

  async familyOf(token: Uint8Array): Promise<TokenFamily | null> {
    const record = (await this.kv.get<TokenRecord>(["token", hashOf(token)])).value;
    if (!record) return null;
    const f = (await this.kv.get<FamilyEntry>(["token_family", record.family])).value;
    if (!f || f.expires.getTime() <= Date.now()) return null;
    const hash = hashOf(token);
    return hash === f.current || hash === f.previous ? publicView(f) : null;
  }

  async revokeFamily(user: string, family: string): Promise<void> {
    try {
      await this.#delete(user, family);
    } finally {
      this.#bump(user);
    }
  }

  /** Deletes a family and its token entries. */
  async #delete(user: string, family: string): Promise<void> {
    while (true) {
      const entry = await this.kv.get<FamilyEntry>(["token_family", family]);
      const f = entry.value;
      const op = this.kv.atomic().check(entry).delete(["user_token", user, family]);
      if (f && f.user === user) {
        op.delete(["token_family", family]);
        for (const h of [f.current, f.previous, ...f.retired]) if (h) op.delete(["token", h]);
      }
      // At most 3 + RETIRED_KEPT mutations, far below KV's 1000 per commit.
      if ((await op.commit()).ok) return;
    }
  }

  async revokeAll(user: string): Promise<void> {
    try {
      for await (const e of this.kv.list({ prefix: ["user_token", user] })) {
        await this.#delete(user, e.key[2] as string);
      }
    } finally {
      this.#bump(user);
    }
  }
}
