/**
 * Resume tokens in Deno KV, stored only as SHA-256 hashes and grouped in families (a device's
 * lineage: one password login, then each RESUME's replacement):
 *   ["token_family", family] → FamilyEntry     (which token is current; the truth of validity)
 *   ["token", hash hex] → TokenRecord          (looked up on RESUME: the token's family)
 *   ["user_token", user, family] → expires     (listed to revoke or prune a user's families)
 * All carry KV's expireIn up to the family's end, so expired ones disappear without a sweeper.
 * A token is valid only while its family's entry names it (current, or previous within the
 * grace), so revoking a family is deleting that one entry; its token entries go with it.
 *
 * Every RESUME writes (the rotation), so its writes go through the group committer, and what it
 * reads is kept in memory: this process owns the KV file, and every change to a family runs
 * here, one at a time per family, which also makes KV's version checks unnecessary.
 */

import { deviceFamily, hashOf, publicView } from "./token_ids.ts";
import { type Clock, systemClock } from "../clock/clock.ts";
import { randomBytes } from "../crypto/keys.ts";
import { TOKEN_BYTES } from "../protocol/messages.ts";
import type { GroupCommitter } from "./committer.ts";
import { ReadCache } from "./read_cache.ts";
import type { IssuedToken, ResumeOutcome, TokenFamily, TokenRecord, TokenStore } from "./types.ts";
import { tokenFamilyKey, tokenKey, userTokenKey, userTokensPrefix } from "./kv_keys.ts";

/**
 * Families and token entries kept in memory: every RESUME looks both up. Unknown tokens are not
 * kept, so guessing cannot push the real ones out.
 */
const CACHED_FAMILIES = 10_000;
const CACHED_TOKENS = 10_000;

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

export class KvTokenStore implements TokenStore {
  readonly #epochs = new Map<string, number>();
  readonly #families = new ReadCache<string, FamilyEntry | null>(
    CACHED_FAMILIES,
    (f) => f !== null,
  );
  readonly #tokens = new ReadCache<string, TokenRecord | null>(CACHED_TOKENS, (r) => r !== null);
  /** The change under way for each family; the next one waits for it. */
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly kv: Deno.Kv,
    private readonly committer: GroupCommitter,
    /** Whose wall time the expiries are set by and checked against. */
    private readonly clock: Clock = systemClock,
  ) {}

  epoch(user: string): number {
    return this.#epochs.get(user) ?? 0;
  }

  #bump(user: string): void {
    this.#epochs.set(user, this.epoch(user) + 1);
  }

  /** Runs `fn` once every earlier change to `family` has ended. */
  #serial<T>(family: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#busy.get(family) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const done = run.catch(() => {});
    this.#busy.set(family, done);
    void done.then(() => {
      if (this.#busy.get(family) === done) this.#busy.delete(family);
    });
    return run;
  }

  #family(id: string): Promise<FamilyEntry | null> {
    return this.#families.get(
      id,
      async () => (await this.kv.get<FamilyEntry>(tokenFamilyKey(id))).value,
    );
  }

  #token(hash: string): Promise<TokenRecord | null> {
    return this.#tokens.get(
      hash,
      async () => (await this.kv.get<TokenRecord>(tokenKey(hash))).value,
    );
  }

  async issue(
    user: string,
    ttlMs: number,
    maxPerUser: number,
    opts: { device?: Uint8Array | null; rotates?: boolean } = {},
  ): Promise<IssuedToken> {
    if (!(ttlMs > 0)) throw new RangeError(`A token's life must be positive, got ${ttlMs}`);
    const id = opts.device ? deviceFamily(user, opts.device) : randomBytes(16).toHex();
    const token = randomBytes(TOKEN_BYTES);
    const hash = hashOf(token);
    const now = new Date(this.clock.wall());
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
    await this.#serial(id, async () => {
      // The device's earlier family ends: a device keeps one token.
      if (opts.device) await this.#delete(user, id);
      await this.committer.write([
        { type: "set", key: tokenFamilyKey(id), value: family, expireIn: ttlMs },
        { type: "set", key: tokenKey(hash), value: record, expireIn: ttlMs },
        { type: "set", key: userTokenKey(user, id), value: expires, expireIn: ttlMs },
      ]);
    });
    // Not cached here: most tokens are never used to resume, and each idle session would hold
    // its family; the first RESUME reads it and keeps it.
    await this.#prune(user, maxPerUser);
    return { token, expires, family: id };
  }

  async #prune(user: string, maxPerUser: number): Promise<void> {
    const entries: { id: string; expires: Date }[] = [];
    for await (const e of this.kv.list<Date>({ prefix: userTokensPrefix(user) })) {
      entries.push({ id: e.key[2] as string, expires: e.value });
    }
    if (entries.length <= maxPerUser) return;
    // Same TTL for all, so the earliest expiry is the oldest family.
    entries.sort((a, b) => a.expires.getTime() - b.expires.getTime());
    for (const { id } of entries.slice(0, entries.length - maxPerUser)) {
      await this.#serial(id, () => this.#delete(user, id));
    }
  }

  async resume(token: Uint8Array, graceMs: number): Promise<ResumeOutcome> {
    const hash = hashOf(token);
    const record = await this.#token(hash);
    if (!record) return { kind: "unknown" };
    // Taken before the family is read: a revocation that ends after this changes it.
    const epoch = this.epoch(record.user);
    return await this.#serial(record.family, async (): Promise<ResumeOutcome> => {
      const f = await this.#family(record.family);
      const now = this.clock.wall();
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
        await this.#delete(f.user, f.id);
        return { kind: "reused", family: publicView(f) };
      }
      const dropped = next.retired.slice(0, Math.max(0, next.retired.length - RETIRED_KEPT));
      next.retired = next.retired.slice(dropped.length);
      assert(next.retired.length <= RETIRED_KEPT && next.current !== hash);
      const expireIn = f.expires.getTime() - now;
      const entry: TokenRecord = { user: f.user, family: f.id, expires: f.expires };
      const mutations: Deno.KvMutation[] = [
        { type: "set", key: tokenFamilyKey(f.id), value: next, expireIn },
        { type: "set", key: tokenKey(next.current), value: entry, expireIn },
      ];
      for (const old of dropped) mutations.push({ type: "delete", key: tokenKey(old) });
      try {
        await this.committer.write(mutations);
      } catch (e) {
        // Whether it reached the file is unknown: read it again next time.
        this.#families.forget(f.id);
        throw e;
      }
      this.#families.set(f.id, next);
      this.#tokens.set(next.current, entry);
      for (const old of dropped) this.#tokens.forget(old);
      return { kind: "ok", family: publicView(next), token: fresh, epoch };
    });
  }

  async familyOf(token: Uint8Array): Promise<TokenFamily | null> {
    const hash = hashOf(token);
    const record = await this.#token(hash);
    if (!record) return null;
    const f = await this.#family(record.family);
    if (!f || f.expires.getTime() <= this.clock.wall()) return null;
    return hash === f.current || hash === f.previous ? publicView(f) : null;
  }

  async revokeFamily(user: string, family: string): Promise<void> {
    // No epoch bump: a RESUME of this family is serialised with it, and other families' RESUMEs
    // under way are not this revocation's business (they failed with BAD_TOKEN when it bumped).
    await this.#serial(family, () => this.#delete(user, family));
  }

  /** Deletes a family and its token entries; run inside #serial for that family. */
  async #delete(user: string, family: string): Promise<void> {
    const f = await this.#family(family);
    const mutations: Deno.KvMutation[] = [{ type: "delete", key: userTokenKey(user, family) }];
    const hashes: string[] = [];
    if (f && f.user === user) {
      mutations.push({ type: "delete", key: tokenFamilyKey(family) });
      for (const h of [f.current, f.previous, ...f.retired]) if (h) hashes.push(h);
      for (const h of hashes) mutations.push({ type: "delete", key: tokenKey(h) });
    }
    // At most 3 + RETIRED_KEPT mutations, far below a commit's limit.
    try {
      await this.committer.write(mutations);
    } finally {
      this.#families.forget(family);
      for (const h of hashes) this.#tokens.forget(h);
    }
  }

  async revokeAll(user: string): Promise<void> {
    try {
      const ids: string[] = [];
      for await (const e of this.kv.list({ prefix: userTokensPrefix(user) })) {
        ids.push(e.key[2] as string);
      }
      for (const id of ids) await this.#serial(id, () => this.#delete(user, id));
    } finally {
      this.#bump(user);
    }
  }
}

function assert(condition: boolean): asserts condition {
  if (!condition) throw new Error("Token family invariant broken");
}
