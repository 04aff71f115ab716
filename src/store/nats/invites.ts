/**
 * Invite codes in the `invites` bucket, stored only as SHA-256 hashes: inv.<hash> → InviteRecord.
 * The expiry is in the value and checked on the injected clock; taking a code is one
 * compare-and-set delete, so one REGISTER takes it, however many nodes try at once.
 */

import type { Clock } from "../../clock/clock.ts";
import { sha256 } from "../../crypto/keys.ts";
import type { InviteImage } from "../transfer.ts";
import type { InviteRecord, InviteStore } from "../types.ts";
import { read, type RecordBucket, writeIf } from "./kv_records.ts";

/** A code as typed, with case, spaces and dashes ignored (as the KV store reads it). */
function keyOf(code: string): string {
  const bare = code.toLowerCase().replace(/[\s-]/g, "");
  return hashKey(sha256(new TextEncoder().encode(bare)).toHex());
}

const hashKey = (hash: string) => `inv.${hash}`;

/** A code brought from another store (import.ts), which keeps the same SHA-256 of it. */
export function importedInvite(image: InviteImage): [string, InviteRecord] {
  return [hashKey(image.hash), { ...image.record }];
}

export class NatsInviteStore implements InviteStore {
  constructor(private readonly kv: RecordBucket, private readonly clock: Clock) {}

  async add(code: string, ttlMs: number): Promise<InviteRecord> {
    const now = new Date(this.clock.wall());
    const record = { created: now, expires: new Date(now.getTime() + ttlMs) };
    await this.#put(code, record);
    return record;
  }

  async #put(code: string, record: InviteRecord): Promise<void> {
    const cur = await read<InviteRecord>(this.kv, keyOf(code));
    // Only a race of two writers of one code could fail this; either's record will do.
    await writeIf(this.kv, keyOf(code), record, cur.revision);
  }

  async valid(code: string): Promise<boolean> {
    const record = (await read<InviteRecord>(this.kv, keyOf(code))).value;
    return record !== null && record.expires.getTime() > this.clock.wall();
  }

  async take(code: string): Promise<InviteRecord | null> {
    const { value, revision } = await read<InviteRecord>(this.kv, keyOf(code));
    if (value === null || value.expires.getTime() <= this.clock.wall()) return null;
    return (await writeIf(this.kv, keyOf(code), null, revision)) ? value : null;
  }

  async giveBack(code: string, record: InviteRecord): Promise<void> {
    if (record.expires.getTime() > this.clock.wall()) await this.#put(code, record);
  }
}
