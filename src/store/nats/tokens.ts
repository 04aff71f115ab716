/**
 * Resume tokens in the `tokens` bucket, stored only as SHA-256 hashes, grouped in families (a
 * device's lineage: one password login, then each RESUME's replacement):
 *   fam.<family> → FamilyEntry     the truth of validity: which token is current
 *   tok.<hash> → TokenEntry        looked up on RESUME: the token's family (and its generation)
 *   fams.<user> → FamilyRef[]      the user's families, oldest first, to revoke or prune them
 * A token is valid only while its family's entry names it (current, or previous within the
 * grace), so every RESUME is one compare-and-set of the family's entry: two nodes resuming one
 * token at once cannot both rotate it. `fams` is written before a family and cleaned after it
 * goes, so it lists every family (and perhaps some gone ones, which cost nothing).
 *
 * Expiry is checked on read against the injected clock (it is in every value); the entries of
 * an expired family go when its user's next login prunes them.
 */

import { deviceFamily, hashOf, publicView } from "../token_ids.ts";
import { userToken } from "../../cluster/names.ts";
import type { Clock } from "../../clock/clock.ts";
import { randomBytes } from "../../crypto/keys.ts";
import { invariant } from "../../invariant/invariant.ts";
import { TOKEN_BYTES } from "../../protocol/messages.ts";
import type { FamilyImage } from "../transfer.ts";
import type { IssuedToken, ResumeOutcome, TokenFamily, TokenStore } from "../types.ts";
import {
  change,
  drop,
  MAX_ATTEMPTS,
  read,
  type RecordBucket,
  tooHot,
  writeIf,
} from "./kv_records.ts";

/**
 * Replaced tokens remembered per family, so that one presented again is seen as reuse (a
 * leak) rather than as unknown; a token older than this is merely unknown.
 */
const RETIRED_KEPT = 8;

interface FamilyEntry extends TokenFamily {
  /**
   * Random per issue: a device's family keeps its id across logins, and a token of the
   * family's earlier life must not count as a replaced token of this one.
   */
  generation: string;
  /** Hash of the token that resumes now. */
  current: string;
  /** Hash of the token `current` replaced, valid for the grace after `rotated`. */
  previous: string | null;
  rotated: Date | null;
  /** Hashes of older tokens, oldest first, at most RETIRED_KEPT. */
  retired: string[];
}

interface TokenEntry {
  user: string;
  family: string;
  generation: string;
  expires: Date;
}

interface FamilyRef {
  id: string;
  expires: number;
}

const familyKey = (id: string) => `fam.${id}`;
const tokenKey = (hash: string) => `tok.${hash}`;
const familiesKey = (user: string) => `fams.${userToken(user)}`;

/**
 * One user's families brought from another store (import.ts), as the records to write: each
 * family's entry (with a generation of its own), an entry for each of its tokens, current,
 * previous and retired (so that a replaced one presented again is still seen as reuse), and
 * the user's list of families, oldest first.
 */
export function importedFamilies(user: string, families: FamilyImage[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  const refs: FamilyRef[] = [];
  for (const f of [...families].sort((a, b) => a.created.getTime() - b.created.getTime())) {
    invariant(f.user === user, "an imported family is its user's");
    const generation = randomBytes(8).toHex();
    const entry: FamilyEntry = {
      user,
      id: f.id,
      device: f.device,
      rotates: f.rotates,
      created: f.created,
      expires: f.expires,
      generation,
      current: f.current,
      previous: f.previous,
      rotated: f.rotated,
      retired: f.retired.slice(-RETIRED_KEPT),
    };
    out.push([familyKey(f.id), entry]);
    for (const hash of [entry.current, entry.previous, ...entry.retired]) {
      if (hash === null) continue;
      const token: TokenEntry = { user, family: f.id, generation, expires: f.expires };
      out.push([tokenKey(hash), token]);
    }
    refs.push({ id: f.id, expires: f.expires.getTime() });
  }
  if (refs.length > 0) out.push([familiesKey(user), refs]);
  return out;
}

export class NatsTokenStore implements TokenStore {
  /** revokeAll calls per user in this process (the contract's epoch is process-local). */
  readonly #epochs = new Map<string, number>();

  constructor(private readonly kv: RecordBucket, private readonly clock: Clock) {}

  epoch(user: string): number {
    return this.#epochs.get(user) ?? 0;
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
    const generation = randomBytes(8).toHex();
    // Listed first, so that a revokeAll from now on finds the family; last in the list: newest.
    const listed = await change<FamilyRef[], FamilyRef[]>(this.kv, familiesKey(user), (refs) => {
      const next = [...(refs ?? []).filter((r) => r.id !== id), { id, expires: expires.getTime() }];
      return { next, result: next };
    });
    const entry: TokenEntry = { user, family: id, generation, expires };
    const family: FamilyEntry = {
      user,
      id,
      device: opts.device ?? null,
      rotates: opts.rotates ?? true,
      created: now,
      expires,
      generation,
      current: hash,
      previous: null,
      rotated: null,
      retired: [],
    };
    // The token's entry and its family at once: until the family names it, the entry resolves
    // to nothing. The device's earlier family, if any, ends here: a device keeps one token.
    const [, earlier] = await Promise.all([
      writeIf(this.kv, tokenKey(hash), entry, 0),
      change<FamilyEntry, FamilyEntry | null>(
        this.kv,
        familyKey(id),
        (cur) => ({ next: family, result: cur }),
      ),
    ]);
    invariant(earlier === null || earlier.user === user, "a family id is one user's");
    if (earlier) await this.#dropTokens(earlier);
    await this.#prune(user, listed, maxPerUser);
    return { token, expires, family: id };
  }

  /** Ends the user's expired families and the oldest beyond `maxPerUser` (of `refs`, listed). */
  async #prune(user: string, refs: FamilyRef[], maxPerUser: number): Promise<void> {
    const now = this.clock.wall();
    const live = refs.filter((r) => r.expires > now);
    const ending = [
      ...refs.filter((r) => r.expires <= now),
      ...live.slice(0, Math.max(0, live.length - maxPerUser)),
    ];
    if (ending.length === 0) return;
    for (const { id } of ending) await this.#delete(user, id);
    await this.#unlist(user, new Set(ending.map((r) => r.id)));
  }

  async #unlist(user: string, ids: ReadonlySet<string>): Promise<void> {
    await change<FamilyRef[], void>(this.kv, familiesKey(user), (refs) => {
      if (refs === null) return { result: undefined };
      const left = refs.filter((r) => !ids.has(r.id));
      return { next: left.length > 0 ? left : null, result: undefined };
    });
  }

  async resume(token: Uint8Array, graceMs: number): Promise<ResumeOutcome> {
    const hash = hashOf(token);
    const record = (await read<TokenEntry>(this.kv, tokenKey(hash))).value;
    if (record === null) return { kind: "unknown" };
    // Taken before the family is read: a revocation that ends after this changes it.
    const epoch = this.epoch(record.user);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { value: f, revision } = await read<FamilyEntry>(this.kv, familyKey(record.family));
      const now = this.clock.wall();
      if (
        f === null || f.user !== record.user || f.generation !== record.generation ||
        f.expires.getTime() <= now
      ) return { kind: "unknown" };
      if (hash === f.current && !f.rotates) {
        return { kind: "ok", family: publicView(f), token, epoch };
      }
      const fresh = randomBytes(TOKEN_BYTES);
      let next: FamilyEntry;
      if (hash === f.current) {
        const retired = f.previous === null ? f.retired : [...f.retired, f.previous];
        next = { ...f, current: hashOf(fresh), previous: hash, rotated: new Date(now), retired };
      } else if (
        hash === f.previous && f.rotated !== null && now - f.rotated.getTime() < graceMs
      ) {
        // The client never got the successor (its LG_OK was lost): replace that one instead.
        // `rotated` stays, so the grace is counted from the first replacement, not renewed.
        next = { ...f, current: hashOf(fresh), retired: [...f.retired, f.current] };
      } else if (hash === f.previous || f.retired.includes(hash)) {
        // A replaced token came back: its family leaked. End it, thief and owner alike.
        if (!(await writeIf(this.kv, familyKey(f.id), null, revision))) continue;
        await this.#dropTokens(f);
        return { kind: "reused", family: publicView(f) };
      } else {
        return { kind: "unknown" }; // forgotten long ago
      }
      const dropped = next.retired.slice(0, Math.max(0, next.retired.length - RETIRED_KEPT));
      next.retired = next.retired.slice(dropped.length);
      invariant(next.retired.length <= RETIRED_KEPT, "a family keeps few retired tokens");
      invariant(next.current !== hash, "a rotation hands out a new token");
      // The successor's entry first: once the family names it, it must resolve.
      const entry: TokenEntry = {
        user: f.user,
        family: f.id,
        generation: f.generation,
        expires: f.expires,
      };
      await writeIf(this.kv, tokenKey(next.current), entry, 0);
      if (!(await writeIf(this.kv, familyKey(f.id), next, revision))) {
        // Another node changed the family first: this successor was never handed out.
        await drop(this.kv, tokenKey(next.current));
        continue;
      }
      await Promise.all(dropped.map((h) => drop(this.kv, tokenKey(h))));
      return { kind: "ok", family: publicView(next), token: fresh, epoch };
    }
    throw tooHot(familyKey(record.family));
  }

  async familyOf(token: Uint8Array): Promise<TokenFamily | null> {
    const hash = hashOf(token);
    const record = (await read<TokenEntry>(this.kv, tokenKey(hash))).value;
    if (record === null) return null;
    const f = (await read<FamilyEntry>(this.kv, familyKey(record.family))).value;
    if (
      f === null || f.generation !== record.generation || f.expires.getTime() <= this.clock.wall()
    ) return null;
    return hash === f.current || hash === f.previous ? publicView(f) : null;
  }

  async revokeFamily(user: string, family: string): Promise<void> {
    // No epoch bump: a RESUME of this family fails its compare-and-set against the delete.
    await this.#delete(user, family);
    await this.#unlist(user, new Set([family]));
  }

  async revokeAll(user: string): Promise<void> {
    try {
      const refs = (await read<FamilyRef[]>(this.kv, familiesKey(user))).value ?? [];
      await Promise.all(refs.map((r) => this.#delete(user, r.id)));
      await this.#unlist(user, new Set(refs.map((r) => r.id)));
    } finally {
      this.#epochs.set(user, this.epoch(user) + 1);
    }
  }

  /** Ends a family of `user` (its entry, the truth, first), then its token entries. */
  async #delete(user: string, family: string): Promise<void> {
    const gone = await change<FamilyEntry, FamilyEntry | null>(
      this.kv,
      familyKey(family),
      (f) => f === null || f.user !== user ? { result: null } : { next: null, result: f },
    );
    if (gone) await this.#dropTokens(gone);
  }

  async #dropTokens(f: FamilyEntry): Promise<void> {
    const hashes = [f.current, f.previous, ...f.retired].filter((h): h is string => h !== null);
    await Promise.all(hashes.map((h) => drop(this.kv, tokenKey(h))));
  }
}
