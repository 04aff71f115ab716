/**
 * Users in the `users` bucket:
 *   user.<identity> → UserRecord        look.<look-alike key> → Claim (which identity holds it)
 * The look-alike key is the one truth of who holds a name: a registration claims it first (a
 * create, so exactly one of two nodes registering "zoe" and "z0e" at once wins), then writes
 * the user. A claim whose user record never came (its node died in between) is taken over once
 * older than ABANDONED_CLAIM_MS. Nothing is cached: another node may change any user.
 */

import { userToken } from "../../cluster/names.ts";
import type { Clock } from "../../clock/clock.ts";
import type { PasswordHash } from "../../crypto/password.ts";
import { usernameKey, usernameLookalikeKey } from "../../protocol/names.ts";
import { newPasswordStamp, sameHash, stamped } from "../password_stamp.ts";
import type { UserRecord, UserStore } from "../types.ts";
import { change, MAX_ATTEMPTS, read, type RecordBucket, tooHot, writeIf } from "./kv_records.ts";

/**
 * A claim without its user record for this long is a registration whose node died between the
 * two writes (they are a few milliseconds apart): the name is free again.
 */
export const ABANDONED_CLAIM_MS = 60_000;

interface Claim {
  /** The identity (lowercase name) that holds the look-alike key. */
  owner: string;
  /** Wall time of the claim. */
  at: number;
}

const userKey = (identity: string) => `user.${userToken(identity)}`;
const lookKey = (name: string) => `look.${usernameLookalikeKey(name)}`;

/** An account brought from another store (import.ts): its key and record. */
export function importedUser(record: UserRecord): [string, UserRecord] {
  return [userKey(usernameKey(record.name)), { ...record }];
}

/** The claim of a look-alike key (usernameLookalikeKey) by an imported account, made at `at`. */
export function importedClaim(look: string, owner: string, at: number): [string, Claim] {
  return [`look.${look}`, { owner, at }];
}

export class NatsUserStore implements UserStore {
  constructor(private readonly kv: RecordBucket, private readonly clock: Clock) {}

  async create(record: UserRecord): Promise<boolean> {
    const identity = usernameKey(record.name);
    const look = lookKey(record.name);
    // The record's revision (a removed account leaves a delete marker) is read beside the claim.
    const [user, claimed] = await Promise.all([
      read<UserRecord>(this.kv, userKey(identity)),
      this.#claim(identity, look),
    ]);
    // Claimed: the record cannot exist unless an older store wrote it without a claim.
    if (!claimed) return false;
    if (
      user.value === null &&
      await writeIf(this.kv, userKey(identity), stamped(record), user.revision)
    ) {
      return true;
    }
    // Someone wrote the record meanwhile: let go of the claim unless their account holds it.
    await this.#release(identity);
    return false;
  }

  /** Drops `identity`'s claim on its look-alike key unless its account exists. */
  async #release(identity: string): Promise<void> {
    if ((await this.get(identity)) !== null) return;
    await change<Claim, void>(this.kv, lookKey(identity), (claim) => ({
      next: claim?.owner === identity ? null : undefined,
      result: undefined,
    }));
  }

  /** Takes the look-alike key for `identity`; false when an account (or registration) holds it. */
  async #claim(identity: string, look: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const claim = await read<Claim>(this.kv, look);
      if (claim.value !== null) {
        if ((await this.get(claim.value.owner)) !== null) return false;
        // Fresh: a registration under way (of this very name, or of a look-alike).
        if (this.clock.wall() - claim.value.at < ABANDONED_CLAIM_MS) return false;
      }
      const mine: Claim = { owner: identity, at: this.clock.wall() };
      if (await writeIf(this.kv, look, mine, claim.revision)) return true;
    }
    throw tooHot(look);
  }

  async lookalike(name: string): Promise<string | null> {
    const claim = (await read<Claim>(this.kv, lookKey(name))).value;
    if (claim === null) return null;
    // A claim whose registration has not finished (or never will) names nobody yet.
    return (await this.get(claim.owner))?.name ?? null;
  }

  async get(name: string): Promise<UserRecord | null> {
    return (await read<UserRecord>(this.kv, userKey(usernameKey(name)))).value;
  }

  setPassword(name: string, password: PasswordHash): Promise<string | null> {
    const passwordStamp = newPasswordStamp();
    return change<UserRecord, string | null>(this.kv, userKey(usernameKey(name)), (cur) => {
      if (cur === null) return { result: null };
      return { next: { ...cur, password, passwordStamp }, result: passwordStamp };
    });
  }

  rehash(name: string, from: PasswordHash, to: PasswordHash): Promise<boolean> {
    return change<UserRecord, boolean>(this.kv, userKey(usernameKey(name)), (cur) => {
      if (cur === null || !sameHash(cur.password, from)) return { result: false };
      return { next: { ...cur, password: to }, result: true };
    });
  }

  async remove(name: string): Promise<boolean> {
    const identity = usernameKey(name);
    const removed = await change<UserRecord, boolean>(this.kv, userKey(identity), (cur) => ({
      next: null,
      result: cur !== null,
    }));
    if (!removed) return false;
    // The record first, the claim after: a node killed in between leaves a claim without a
    // record, which lookalike() ignores and create() takes over once abandoned.
    await change<Claim, void>(this.kv, lookKey(identity), (claim) => {
      // Only the account's own claim: another may hold the key (an older account).
      if (claim?.owner !== identity) return { result: undefined };
      return { next: null, result: undefined };
    });
    return true;
  }
}
