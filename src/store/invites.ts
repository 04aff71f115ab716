/**
 * Invite codes for `accounts.registration: "invite"`, stored only as SHA-256 hashes:
 *   ["invite", hash hex] → InviteRecord, with KV's expireIn so that old codes disappear.
 * Nothing of them is cached, so `parley admin invite` can add codes beside a running server
 * (KV atomics hold across processes).
 */

import { type Clock, systemClock } from "../clock/clock.ts";
import { randomBytes, sha256 } from "../crypto/keys.ts";
import type { InviteRecord, InviteStore } from "./types.ts";
import { inviteKey } from "./kv_keys.ts";

/** Random bytes per code: 80 bits, unguessable at the registration allowance's pace. */
const INVITE_BYTES = 10;

/** A fresh code as people read and type it: 20 hex digits in four groups of five. */
export function newInviteCode(): string {
  return randomBytes(INVITE_BYTES).toHex().match(/.{5}/g)!.join("-");
}

/** A code as typed, with case, spaces and dashes ignored. */
function idOf(code: string): string {
  const bare = code.toLowerCase().replace(/[\s-]/g, "");
  return sha256(new TextEncoder().encode(bare)).toHex();
}

export class KvInviteStore implements InviteStore {
  constructor(
    private readonly kv: Deno.Kv,
    /** Whose wall time the expiries are set by and checked against. */
    private readonly clock: Clock = systemClock,
  ) {}

  async add(code: string, ttlMs: number): Promise<InviteRecord> {
    const now = new Date(this.clock.wall());
    const record = { created: now, expires: new Date(now.getTime() + ttlMs) };
    await this.kv.set(inviteKey(idOf(code)), record, { expireIn: ttlMs });
    return record;
  }

  async valid(code: string): Promise<boolean> {
    const record = (await this.kv.get<InviteRecord>(inviteKey(idOf(code)))).value;
    return record !== null && record.expires.getTime() > this.clock.wall();
  }

  async take(code: string): Promise<InviteRecord | null> {
    const key = inviteKey(idOf(code));
    const entry = await this.kv.get<InviteRecord>(key);
    if (entry.value === null || entry.value.expires.getTime() <= this.clock.wall()) return null;
    // Only one REGISTER can take a code, however many try it at once.
    const result = await this.kv.atomic().check(entry).delete(key).commit();
    return result.ok ? entry.value : null;
  }

  async giveBack(code: string, record: InviteRecord): Promise<void> {
    const ttlMs = record.expires.getTime() - this.clock.wall();
    if (ttlMs > 0) await this.kv.set(inviteKey(idOf(code)), record, { expireIn: ttlMs });
  }
}
