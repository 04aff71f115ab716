/**
 * A store in memory: the second implementation of the interfaces in types.ts, which passes the
 * same contract as the KV store (tests/store/contract/). Its data lives in a `MemoryData` that
 * outlives the stores opened over it, so that a test can close one and open another over the
 * same data, as a restart does; everything a store keeps only for its own life (epochs) goes
 * with it. Every write is done when the call returns, so `durable` completes at once.
 */

import { type Clock, systemClock } from "../../clock/clock.ts";
import { randomBytes, sha256 } from "../../crypto/keys.ts";
import type { PasswordHash } from "../../crypto/password.ts";
import { newPasswordStamp, sameHash, stamped } from "../password_stamp.ts";
import { TOKEN_BYTES } from "../../protocol/messages.ts";
import { usernameKey, usernameLookalikeKey } from "../../protocol/names.ts";
import { storable } from "../storable.ts";
import type {
  ChatMessage,
  InviteRecord,
  InviteStore,
  IssuedToken,
  ResumeOutcome,
  Store,
  TokenFamily,
  TokenStore,
  UserRecord,
  UserStore,
  WorldEntry,
  WorldStore,
} from "../types.ts";
import { MemoryInbox, type MemoryInboxData, newInboxData } from "./inbox.ts";
import {
  MemoryBlocks,
  MemoryFriends,
  MemoryGroups,
  MemoryInvitations,
  newSocialData,
  type SocialData,
} from "./social.ts";

interface Family extends TokenFamily {
  current: string;
  previous: string | null;
  rotated: number | null;
}

/** What a restart keeps: every record, as a store on disk would. */
export interface MemoryData {
  users: Map<string, UserRecord>;
  /** Look-alike key → the identity holding it. */
  lookalikes: Map<string, string>;
  families: Map<string, Family>;
  /** Token hash → family id, for current and replaced tokens alike. */
  tokens: Map<string, string>;
  invites: Map<string, InviteRecord>;
  world: WorldEntry[];
  worldSeq: number;
  social: SocialData;
  inbox: MemoryInboxData;
  /** A store is open over the data (one at a time, like the KV store's data dir lock). */
  open: boolean;
}

export function newMemoryData(): MemoryData {
  return {
    users: new Map(),
    lookalikes: new Map(),
    families: new Map(),
    tokens: new Map(),
    invites: new Map(),
    world: [],
    worldSeq: 0,
    social: newSocialData(),
    inbox: newInboxData(),
    open: false,
  };
}

export interface MemoryStoreOptions {
  worldBacklog: number;
  clock?: Clock;
}

export function openMemoryStore(data: MemoryData, opts: MemoryStoreOptions): Store {
  if (data.open) throw new Error("The memory store's data is open already");
  data.open = true;
  const clock = opts.clock ?? systemClock;
  let closed = false;
  return {
    users: new MemoryUsers(data),
    tokens: new MemoryTokens(data, clock),
    invites: new MemoryInvites(data, clock),
    friends: new MemoryFriends(data.social),
    groups: new MemoryGroups(data.social),
    blocks: new MemoryBlocks(data.social),
    invitations: new MemoryInvitations(data.social, clock),
    inbox: new MemoryInbox(data.inbox),
    world: new MemoryWorld(data, opts.worldBacklog),
    ping: () => closed ? Promise.reject(new Error("The store is closed")) : Promise.resolve(),
    close: () => {
      if (!closed) data.open = false;
      closed = true;
      return Promise.resolve();
    },
  };
}

class MemoryUsers implements UserStore {
  constructor(private readonly data: MemoryData) {}

  create(record: UserRecord): Promise<boolean> {
    const key = usernameKey(record.name);
    const look = usernameLookalikeKey(record.name);
    if (this.data.users.has(key) || this.data.lookalikes.has(look)) return Promise.resolve(false);
    this.data.users.set(key, stamped(record));
    this.data.lookalikes.set(look, key);
    return Promise.resolve(true);
  }

  lookalike(name: string): Promise<string | null> {
    const owner = this.data.lookalikes.get(usernameLookalikeKey(name));
    return Promise.resolve(owner === undefined ? null : this.data.users.get(owner)?.name ?? null);
  }

  get(name: string): UserRecord | null {
    const record = this.data.users.get(usernameKey(name));
    return record ? { ...record } : null;
  }

  setPassword(name: string, password: PasswordHash): Promise<string | null> {
    const record = this.data.users.get(usernameKey(name));
    if (!record) return Promise.resolve(null);
    record.password = password;
    record.passwordStamp = newPasswordStamp();
    return Promise.resolve(record.passwordStamp);
  }

  rehash(name: string, from: PasswordHash, to: PasswordHash): Promise<boolean> {
    const record = this.data.users.get(usernameKey(name));
    const same = record !== undefined && sameHash(record.password, from);
    if (same) record.password = to;
    return Promise.resolve(same);
  }

  remove(name: string): Promise<boolean> {
    const key = usernameKey(name);
    if (!this.data.users.delete(key)) return Promise.resolve(false);
    const look = usernameLookalikeKey(key);
    if (this.data.lookalikes.get(look) === key) this.data.lookalikes.delete(look);
    return Promise.resolve(true);
  }
}

const hashOf = (token: Uint8Array) => sha256(token).toHex();

function publicView(f: Family): TokenFamily {
  const { user, id, device, rotates, created, expires } = f;
  return { user, id, device, rotates, created, expires };
}

class MemoryTokens implements TokenStore {
  /** Per process, as the interface says: a new store starts every epoch again. */
  readonly #epochs = new Map<string, number>();

  constructor(private readonly data: MemoryData, private readonly clock: Clock) {}

  epoch(user: string): number {
    return this.#epochs.get(user) ?? 0;
  }

  issue(
    user: string,
    ttlMs: number,
    maxPerUser: number,
    opts: { device?: Uint8Array | null; rotates?: boolean } = {},
  ): Promise<IssuedToken> {
    if (!(ttlMs > 0)) throw new RangeError(`A token's life must be positive, got ${ttlMs}`);
    const device = opts.device ? opts.device.slice() : null;
    const id = device
      ? sha256(new TextEncoder().encode(`parley-device\0${user}\0`), device).toHex()
      : randomBytes(16).toHex();
    this.#delete(id);
    const token = randomBytes(TOKEN_BYTES);
    const now = this.clock.wall();
    const expires = new Date(now + ttlMs);
    const family: Family = {
      user,
      id,
      device,
      rotates: opts.rotates ?? true,
      created: new Date(now),
      expires,
      current: hashOf(token),
      previous: null,
      rotated: null,
    };
    this.data.families.set(id, family);
    this.data.tokens.set(family.current, id);
    // The oldest families beyond the bound go (Map order is the order of issue).
    const mine = [...this.data.families.values()].filter((f) => f.user === user);
    for (const f of mine.slice(0, Math.max(0, mine.length - maxPerUser))) this.#delete(f.id);
    return Promise.resolve({ token, expires, family: id });
  }

  resume(token: Uint8Array, graceMs: number): Promise<ResumeOutcome> {
    const hash = hashOf(token);
    const f = this.#live(hash);
    if (!f) return Promise.resolve({ kind: "unknown" });
    const epoch = this.epoch(f.user);
    const now = this.clock.wall();
    if (hash === f.current && !f.rotates) {
      return Promise.resolve({ kind: "ok", family: publicView(f), token, epoch });
    }
    const inGrace = hash === f.previous && f.rotated !== null && now - f.rotated < graceMs;
    if (hash !== f.current && !inGrace) {
      // A replaced token came back: its family leaked.
      this.#delete(f.id);
      return Promise.resolve({ kind: "reused", family: publicView(f) });
    }
    const fresh = randomBytes(TOKEN_BYTES);
    if (hash === f.current) {
      f.previous = hash;
      f.rotated = now;
    }
    f.current = hashOf(fresh);
    this.data.tokens.set(f.current, f.id);
    return Promise.resolve({ kind: "ok", family: publicView(f), token: fresh, epoch });
  }

  /** The unexpired family that `hash` is a token of (current, replaced or older). */
  #live(hash: string): Family | null {
    const id = this.data.tokens.get(hash);
    const f = id === undefined ? undefined : this.data.families.get(id);
    return f && f.expires.getTime() > this.clock.wall() ? f : null;
  }

  familyOf(token: Uint8Array): Promise<TokenFamily | null> {
    const hash = hashOf(token);
    const f = this.#live(hash);
    const valid = f !== null && (hash === f.current || hash === f.previous);
    return Promise.resolve(valid ? publicView(f) : null);
  }

  revokeFamily(user: string, family: string): Promise<void> {
    if (this.data.families.get(family)?.user === user) this.#delete(family);
    return Promise.resolve();
  }

  revokeAll(user: string): Promise<void> {
    for (const f of [...this.data.families.values()]) if (f.user === user) this.#delete(f.id);
    this.#epochs.set(user, this.epoch(user) + 1);
    return Promise.resolve();
  }

  #delete(family: string): void {
    if (!this.data.families.delete(family)) return;
    for (const [hash, id] of this.data.tokens) if (id === family) this.data.tokens.delete(hash);
  }
}

/** A code as typed, with case, spaces and dashes ignored. */
const inviteId = (code: string) => code.toLowerCase().replace(/[\s-]/g, "");

class MemoryInvites implements InviteStore {
  constructor(private readonly data: MemoryData, private readonly clock: Clock) {}

  add(code: string, ttlMs: number): Promise<InviteRecord> {
    const now = this.clock.wall();
    const record = { created: new Date(now), expires: new Date(now + ttlMs) };
    this.data.invites.set(inviteId(code), record);
    return Promise.resolve({ ...record });
  }

  #live(code: string): InviteRecord | null {
    const record = this.data.invites.get(inviteId(code));
    return record && record.expires.getTime() > this.clock.wall() ? record : null;
  }

  valid(code: string): Promise<boolean> {
    return Promise.resolve(this.#live(code) !== null);
  }

  take(code: string): Promise<InviteRecord | null> {
    const record = this.#live(code);
    if (record) this.data.invites.delete(inviteId(code));
    return Promise.resolve(record);
  }

  giveBack(code: string, record: InviteRecord): Promise<void> {
    if (record.expires.getTime() > this.clock.wall()) {
      this.data.invites.set(inviteId(code), { ...record });
    }
    return Promise.resolve();
  }
}

class MemoryWorld implements WorldStore {
  version = 0;

  constructor(private readonly data: MemoryData, private readonly keep: number) {
    data.world.splice(0, Math.max(0, data.world.length - keep));
  }

  append(message: ChatMessage): Promise<void> {
    this.data.world.push({ seq: ++this.data.worldSeq, message: storable(message) });
    this.data.world.splice(0, Math.max(0, this.data.world.length - this.keep));
    this.version++;
    return Promise.resolve();
  }

  recent(): ChatMessage[] {
    return this.data.world.map((e) => e.message);
  }

  entries(): readonly WorldEntry[] {
    return [...this.data.world];
  }
}
