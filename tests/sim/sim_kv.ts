/**
 * A simulated Deno KV for the delivery simulation: the part of `Deno.Kv` that the inbox store and
 * the group committer use (atomic set/delete/mutate/commit, list, get, getMany, close) over an
 * in-memory sorted map with Deno KV's key order.
 *
 * The disk (`SimDisk`) outlives processes; each process opens its own handle (`SimKv`). A commit
 * is held until the simulation completes it, so that acknowledgements, reads and new writes can
 * race it; it then applies atomically, or fails as a whole (a throw or `ok: false`). A crash
 * fences the old handle: its held commits are either applied (they reached the disk, the reply
 * did not) or dropped, and whatever the dead process still does reaches nothing. Values are
 * copied when a commit is made and when a row is read, as KV's serialization does, so that a
 * store keeping a view of bytes it does not own shows up as corrupted content.
 */

export type SimKey = readonly Deno.KvKeyPart[];

interface Row {
  key: SimKey;
  value: unknown;
  versionstamp: string;
}

/** How a held commit ends. */
export type CommitOutcome = "apply" | "throw" | "not_ok";

interface HeldCommit {
  handle: SimKv;
  mutations: Deno.KvMutation[];
  resolve: (r: Deno.KvCommitResult | Deno.KvCommitError) => void;
  reject: (e: Error) => void;
}

const encoder = new TextEncoder();
const TYPE_ORDER = (p: Deno.KvKeyPart): number =>
  p instanceof Uint8Array
    ? 0
    : typeof p === "string"
    ? 1
    : typeof p === "number"
    ? 2
    : typeof p === "bigint"
    ? 3
    : typeof p === "boolean"
    ? 4
    : -1;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** UTF-8 byte order; UTF-16 order agrees with it below the surrogates. */
function compareStrings(a: string, b: string): number {
  if (/[\ud800-\uffff]/.test(a) || /[\ud800-\uffff]/.test(b)) {
    return compareBytes(encoder.encode(a), encoder.encode(b));
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePart(a: Deno.KvKeyPart, b: Deno.KvKeyPart): number {
  const ta = TYPE_ORDER(a);
  const tb = TYPE_ORDER(b);
  if (ta < 0 || tb < 0) throw new TypeError(`Unsupported key part: ${String(a)}, ${String(b)}`);
  if (ta !== tb) return ta - tb;
  if (ta === 0) return compareBytes(a as Uint8Array, b as Uint8Array);
  if (ta === 1) return compareStrings(a as string, b as string);
  if (ta === 2) {
    const x = a as number;
    const y = b as number;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      return Number(Number.isNaN(x)) - Number(Number.isNaN(y));
    }
    if (x === y) return Object.is(x, -0) ? (Object.is(y, -0) ? 0 : -1) : Object.is(y, -0) ? 1 : 0;
    return x < y ? -1 : 1;
  }
  if (ta === 3) return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0;
  return Number(a) - Number(b);
}

/** Deno KV's key order: part by part; a key sorts before the keys it is a prefix of. */
export function compareKeys(a: SimKey, b: SimKey): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = comparePart(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function startsWith(key: SimKey, prefix: SimKey): boolean {
  return key.length > prefix.length && compareKeys(key.slice(0, prefix.length), prefix) === 0;
}

/** The committed rows: what survives a crash. */
export class SimDisk {
  /** Sorted by key. */
  readonly rows: Row[] = [];
  readonly #held: HeldCommit[] = [];
  #version = 0;
  /** Commits applied, and failed by injection. */
  applied = 0;
  failed = 0;
  /** Values committed with bytes that do not own their buffer (a view of a slab, say). */
  readonly views: string[] = [];
  /** Says whether a read waits for the simulation to let it go on (null: none waits). */
  holdReads: (() => boolean) | null = null;
  readonly #heldReads: (() => void)[] = [];

  /** Reads waiting, oldest first. */
  get heldReads(): number {
    return this.#heldReads.length;
  }

  /** Resolves at once, or once the simulation lets the read go on. */
  readGate(): Promise<void> {
    if (!this.holdReads?.()) return Promise.resolve();
    return new Promise((resolve) => this.#heldReads.push(resolve));
  }

  /** Lets the oldest held read go on. */
  releaseRead(): void {
    const r = this.#heldReads.shift();
    if (!r) throw new Error("No read is held");
    r();
  }

  /** Where `key` is, or where it would go (as -(index) - 1). */
  #find(key: SimKey): number {
    let lo = 0;
    let hi = this.rows.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(this.rows[mid].key, key);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }

  get(key: SimKey): Row | null {
    const at = this.#find(key);
    return at >= 0 ? this.rows[at] : null;
  }

  /** Index of the first row at or after `key`. */
  lowerBound(key: SimKey): number {
    const at = this.#find(key);
    return at >= 0 ? at : -at - 1;
  }

  /** Commits waiting for the simulation to complete them, oldest first. */
  get held(): number {
    return this.#held.length;
  }

  hold(c: HeldCommit): void {
    this.#held.push(c);
  }

  /** Completes the oldest held commit. */
  complete(outcome: CommitOutcome): void {
    const c = this.#held.shift();
    if (!c) throw new Error("No commit is held");
    if (outcome === "apply") {
      const versionstamp = this.#apply(c.mutations);
      c.resolve({ ok: true, versionstamp });
    } else {
      this.failed++;
      if (outcome === "throw") c.reject(new Error("Simulated KV commit failure"));
      else c.resolve({ ok: false });
    }
  }

  /**
   * A crash: the held commits up to one that `keep` refuses reached the disk, the rest did not
   * (KV commits land in order); none is answered. Returns how many were kept.
   */
  crash(keep: () => boolean): number {
    // The dead process's reads never come back.
    this.#heldReads.length = 0;
    let kept = 0;
    let lost = false;
    for (const c of this.#held.splice(0)) {
      lost ||= !keep();
      if (lost) continue;
      this.#apply(c.mutations);
      kept++;
    }
    return kept;
  }

  #apply(mutations: Deno.KvMutation[]): string {
    const versionstamp = String(++this.#version).padStart(20, "0");
    for (const m of mutations) {
      const at = this.#find(m.key);
      if (m.type === "set") {
        const row = { key: m.key, value: m.value, versionstamp };
        if (at >= 0) this.rows[at] = row;
        else this.rows.splice(-at - 1, 0, row);
      } else if (m.type === "delete") {
        if (at >= 0) this.rows.splice(at, 1);
      } else {
        throw new Error(`The simulated KV does not do "${m.type}"`);
      }
    }
    this.applied++;
    return versionstamp;
  }
}

/**
 * Bytes that are a view of a larger buffer: KV serializes the whole buffer, so a stored view of
 * a shared slab carries other messages' bytes.
 */
function findViews(v: unknown, where: string, out: string[]): void {
  if (v instanceof Uint8Array) {
    if (v.byteOffset !== 0 || v.byteLength !== v.buffer.byteLength) out.push(where);
  } else if (Array.isArray(v)) {
    for (const x of v) findViews(x, where, out);
  } else if (v !== null && typeof v === "object" && !(v instanceof Date)) {
    for (const [k, x] of Object.entries(v)) findViews(x, `${where}.${k}`, out);
  }
}

const NEVER = new Promise<never>(() => {});

class SimAtomic {
  readonly #mutations: Deno.KvMutation[] = [];
  constructor(private readonly handle: SimKv) {}

  mutate(...mutations: Deno.KvMutation[]): this {
    this.#mutations.push(...mutations);
    return this;
  }

  set(key: Deno.KvKey, value: unknown): this {
    return this.mutate({ type: "set", key, value });
  }

  delete(key: Deno.KvKey): this {
    return this.mutate({ type: "delete", key });
  }

  check(..._checks: Deno.AtomicCheck[]): this {
    throw new Error("The simulated KV does not do checks");
  }

  commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    for (const m of this.#mutations) {
      if (m.type === "set") findViews(m.value, String(m.key.join("/")), this.handle.disk.views);
    }
    // Serialized now, as KV does: later changes to the values reach nothing.
    const mutations = this.#mutations.map((m) =>
      m.type === "set"
        ? { type: "set" as const, key: [...m.key], value: structuredClone(m.value) }
        : { ...m, key: [...m.key] }
    );
    if (mutations.length > 1000) throw new TypeError("Too many mutations in one commit");
    return this.handle.hold(mutations);
  }
}

/** One process's handle on the disk. */
export class SimKv {
  #fenced = false;
  #closed = false;
  /** Reads made, so that the simulation can tell when the process went quiet. */
  reads = 0;

  constructor(
    readonly disk: SimDisk,
    /** Rows per page of a list when the caller names no batchSize (KV's default is 100). */
    readonly pageRows = 100,
  ) {}

  /** The process died: nothing it does reaches the disk any more, nothing it waits for ends. */
  fence(): void {
    this.#fenced = true;
  }

  hold(mutations: Deno.KvMutation[]): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    this.#open();
    if (this.#fenced) return NEVER;
    return new Promise((resolve, reject) =>
      this.disk.hold({ handle: this, mutations, resolve, reject })
    );
  }

  #open(): void {
    if (this.#closed) throw new Error("The simulated KV is closed");
  }

  atomic(): SimAtomic {
    this.#open();
    return new SimAtomic(this);
  }

  async get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    this.#open();
    this.reads++;
    await this.disk.readGate();
    if (this.#fenced) await NEVER;
    const row = this.disk.get(key);
    return row
      ? { key: row.key, value: structuredClone(row.value) as T, versionstamp: row.versionstamp }
      : { key, value: null, versionstamp: null };
  }

  async getMany<T extends readonly unknown[]>(keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<T>[]> {
    const out: Deno.KvEntryMaybe<T>[] = [];
    for (const k of keys) out.push(await this.get(k));
    return out;
  }

  /**
   * Rows in key order, read a page at a time (each page sees the disk as it is then, as KV's
   * list does), so that commits landing during a long list show up in its later pages.
   */
  async *list<T>(
    selector: Deno.KvListSelector,
    options: Deno.KvListOptions = {},
  ): AsyncGenerator<Deno.KvEntry<T>> {
    this.#open();
    if (options.reverse) throw new Error("The simulated KV does not list in reverse");
    const s = selector as { prefix?: SimKey; start?: SimKey; end?: SimKey };
    const limit = options.limit ?? Infinity;
    const page = options.batchSize ?? this.pageRows;
    let after: SimKey | null = null;
    let given = 0;
    while (given < limit) {
      this.reads++;
      await this.disk.readGate();
      if (this.#fenced) await NEVER;
      const rows = this.disk.rows;
      let i = after
        ? this.disk.lowerBound(after)
        : s.start
        ? this.disk.lowerBound(s.start)
        : s.prefix
        ? this.disk.lowerBound(s.prefix)
        : 0;
      if (after && i < rows.length && compareKeys(rows[i].key, after) === 0) i++;
      const out: Deno.KvEntry<T>[] = [];
      for (; i < rows.length && out.length < page && given + out.length < limit; i++) {
        const r = rows[i];
        if (s.end && compareKeys(r.key, s.end) >= 0) break;
        if (s.prefix && !startsWith(r.key, s.prefix)) {
          if (compareKeys(r.key, s.prefix) <= 0) continue; // the prefix key itself
          break;
        }
        out.push({
          key: r.key,
          value: structuredClone(r.value) as T,
          versionstamp: r.versionstamp,
        });
      }
      for (const e of out) yield e;
      given += out.length;
      if (out.length < page) return;
      after = out[out.length - 1].key;
    }
  }

  close(): void {
    this.#closed = true;
  }
}

/** The simulated KV where the store expects a `Deno.Kv`. */
export function asDenoKv(kv: SimKv): Deno.Kv {
  return kv as unknown as Deno.Kv;
}
