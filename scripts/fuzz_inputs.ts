/**
 * Input generators for scripts/fuzz.ts: random values and messages, request bodies that are
 * nearly valid for their schema, and the byte mutations applied to valid encodings. Pure: every
 * choice comes from the Prng handed in, so an input is reproducible from its seed.
 */

import { MsgType } from "../src/protocol/messages.ts";
import type { Message } from "../src/protocol/message_codec.ts";
import { Tag, type Value } from "../src/protocol/value.ts";
import { Prng } from "../tests/protocol/prng.ts";

export { Prng };

/** A seed for one iteration of one category, so any input can be rebuilt on its own. */
export function iterationSeed(seed: number, category: number, iteration: number): number {
  let h = Math.imul(seed ^ 0x9e37_79b9, 0x85eb_ca6b) ^ Math.imul(category + 1, 0xc2b2_ae35);
  h = Math.imul(h ^ (h >>> 16), 0x27d4_eb2d) ^ iteration;
  h = Math.imul(h ^ (h >>> 15), 0x1656_67b1);
  return (h ^ (h >>> 13)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Random values

export const INT_EDGES = [
  0,
  1,
  -1,
  127,
  128,
  255,
  256,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_ffff,
  0x1_0000_0000,
  -0x8000_0000,
  -0x8000_0001,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
];
const DATE_EDGES = [0, 1, -1, 8.64e15, -8.64e15, 1_700_000_000_000];
const KEY_EDGES = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "0",
  "12",
  "a",
  "é",
  "键",
  // field names of the request schemas, so random dicts sometimes look like real bodies
  "id",
  "type",
  "data",
  "name",
  "target_username",
  "group_id",
  "world",
  "transfer_id",
  "offset",
  "limit",
  "size",
  "sha256",
  "accept",
  "received",
  "reason",
];

function randomCodePoint(rng: Prng): number {
  switch (rng.int(0, 6)) {
    case 0:
      return rng.int(0x20, 0x7e);
    case 1:
      return rng.int(0, 0x1f);
    case 2:
      return rng.int(0xa0, 0x7ff);
    case 3:
      return rng.int(0x4e00, 0x9fff);
    case 4:
      return rng.int(0x1f300, 0x1faff);
    case 5:
      return rng.pick([0xfeff, 0xfffd, 0xffff, 0x10ffff, 0xe000, 0x202e, 0x200b]);
    default: {
      const cp = rng.int(0, 0x10ffff - 0x800); // any scalar value, never a lone surrogate
      return cp < 0xd800 ? cp : cp + 0x800;
    }
  }
}

export function randomString(rng: Prng, maxChars: number): string {
  let s = "";
  const n = rng.int(0, maxChars);
  for (let i = 0; i < n; i++) s += String.fromCodePoint(randomCodePoint(rng));
  return s;
}

function randomKey(rng: Prng): string {
  if (rng.chance(0.3)) return rng.pick(KEY_EDGES);
  let key = randomString(rng, 12);
  if (key === "") key = "k";
  while (new TextEncoder().encode(key).length > 255) key = key.slice(0, key.length >> 1);
  return key;
}

export function randomInt(rng: Prng): number {
  switch (rng.int(0, 2)) {
    case 0:
      return rng.pick(INT_EDGES);
    case 1:
      return rng.int(-1000, 1000);
    default: {
      const n = (rng.chance(0.5) ? -1 : 1) * (rng.int(0, 0x1f_ffff) * 0x1_0000_0000 + rng.u32());
      return n === 0 ? 0 : n; // never -0
    }
  }
}

function randomDate(rng: Prng): Date {
  if (rng.chance(0.3)) return new Date(rng.pick(DATE_EDGES));
  return new Date(Math.floor((rng.next() * 2 - 1) * 8.64e15));
}

/** Sets a dict entry the way the decoder does, so "__proto__" stays a plain data property. */
function put(dict: { [key: string]: Value }, key: string, value: Value): void {
  Object.defineProperty(dict, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A random value of any type; lists and dicts nest to at most `maxDepth`. */
export function randomValue(rng: Prng, depth = 1, maxDepth = 6): Value {
  switch (rng.int(0, depth < maxDepth ? 9 : 5)) { // 6 to 9 nest
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return randomInt(rng);
    case 3:
      return randomString(rng, 20);
    case 4:
      return rng.bytes(rng.int(0, 40));
    case 5:
      return randomDate(rng);
    case 6:
    case 8: {
      const items: Value[] = [];
      const n = rng.int(0, 4);
      for (let i = 0; i < n; i++) items.push(randomValue(rng, depth + 1, maxDepth));
      return items;
    }
    default: {
      const dict: { [key: string]: Value } = {};
      const n = rng.int(0, 4);
      for (let i = 0; i < n; i++) put(dict, randomKey(rng), randomValue(rng, depth + 1, maxDepth));
      return dict;
    }
  }
}

/** A value nested `depth` levels deep (lists or dicts), to reach the depth limit. */
export function deepValue(rng: Prng, depth: number): Value {
  let v: Value = randomValue(rng, 1, 1);
  for (let i = 1; i < depth; i++) {
    if (rng.chance(0.5)) v = [v];
    else {
      const d: { [key: string]: Value } = {};
      put(d, randomKey(rng), v);
      v = d;
    }
  }
  return v;
}

/** The request types a server routes, plus PONG (answered by nothing). */
export const REQUEST_TYPES: readonly number[] = [
  MsgType.LOGIN,
  MsgType.REGISTER,
  MsgType.ADD_FRIEND,
  MsgType.CREATE_G,
  MsgType.INVITE,
  MsgType.SEND,
  MsgType.QUERY_MEMBER,
  MsgType.LOGOUT,
  MsgType.RESUME,
  MsgType.CHANGE_PASSWORD,
  MsgType.PING,
  MsgType.REMOVE_FRIEND,
  MsgType.LEAVE_G,
  MsgType.WHO,
  MsgType.ACK,
  MsgType.LIST_FRIENDS,
  MsgType.LIST_GROUPS,
  MsgType.FILE_OFFER,
  MsgType.FILE_ANSWER,
  MsgType.FILE_CHUNK,
  MsgType.FILE_ACK,
  MsgType.FILE_CANCEL,
  MsgType.BLOCK,
  MsgType.UNBLOCK,
  MsgType.LIST_BLOCKS,
  MsgType.JOIN_G,
  MsgType.DECLINE_G,
  MsgType.FIND_USER,
];

/** What near-valid bodies may name: users that exist, and groups that may. */
export interface BodyContext {
  usernames: readonly string[];
  maxGroupId: number;
}

const NO_USERS: BodyContext = { usernames: [], maxGroupId: 8 };

function username(rng: Prng, ctx: BodyContext): Value {
  const r = rng.int(0, 9);
  if (r < 5 && ctx.usernames.length > 0) {
    const name = rng.pick(ctx.usernames);
    return rng.chance(0.2) ? name.toUpperCase() : name;
  }
  if (r < 7) return "fz" + rng.u32().toString(36); // a valid name that may not exist
  if (r < 8) return rng.pick(["", "a", "x".repeat(32), "x".repeat(33), "-ab", "a b", "ab\u0000"]);
  if (r < 9) return randomString(rng, 70);
  return randomValue(rng, 2);
}

function groupId(rng: Prng, ctx: BodyContext): Value {
  const r = rng.int(0, 9);
  if (r < 6) return rng.int(1, ctx.maxGroupId);
  if (r < 9) return rng.pick(INT_EDGES);
  return randomValue(rng, 2);
}

function posInt(rng: Prng): Value {
  return rng.chance(0.6) ? rng.int(0, 2000) : rng.chance(0.8) ? rng.pick(INT_EDGES) : "1";
}

function password(rng: Prng): Value {
  const r = rng.int(0, 9);
  if (r < 6) return "pw-" + randomString(rng, 16);
  if (r < 8) return randomString(rng, 8);
  if (r < 9) return "p".repeat(rng.pick([0, 7, 8, 1024, 1025]));
  return randomValue(rng, 2);
}

function text(rng: Prng): Value {
  const r = rng.int(0, 9);
  if (r < 7) return randomString(rng, 40);
  if (r < 8) return "";
  if (r < 9) return "t".repeat(rng.pick([255, 256, 16384, 16385]));
  return randomValue(rng, 2);
}

/** A body shaped like the schema of request `type`, with a random fault now and then. */
export function nearValidBody(rng: Prng, type: number, ctx: BodyContext = NO_USERS): Value {
  const body = shapedBody(rng, type, ctx);
  return rng.chance(0.25) ? perturb(rng, body) : body;
}

function shapedBody(rng: Prng, type: number, ctx: BodyContext): Value {
  switch (type) {
    case MsgType.LOGIN:
    case MsgType.REGISTER:
      return [username(rng, ctx), password(rng)];
    case MsgType.LOGOUT:
      return rng.chance(0.5) ? null : username(rng, ctx);
    case MsgType.RESUME:
      return rng.bytes(rng.chance(0.8) ? 32 : rng.int(0, 40));
    case MsgType.CHANGE_PASSWORD:
      return [password(rng), password(rng)];
    case MsgType.PING:
    case MsgType.LIST_FRIENDS:
    case MsgType.LIST_GROUPS:
    case MsgType.LIST_BLOCKS:
      return rng.chance(0.5) ? null : randomValue(rng, 2);
    case MsgType.ADD_FRIEND:
    case MsgType.REMOVE_FRIEND:
    case MsgType.BLOCK:
    case MsgType.UNBLOCK:
    case MsgType.FIND_USER:
      return username(rng, ctx);
    case MsgType.CREATE_G: {
      const members: Value[] = [];
      const n = rng.chance(0.9) ? rng.int(0, 4) : rng.int(0, 600);
      for (let i = 0; i < n; i++) members.push(username(rng, ctx));
      return [text(rng), members];
    }
    case MsgType.INVITE:
      return [groupId(rng, ctx), username(rng, ctx)];
    case MsgType.QUERY_MEMBER:
    case MsgType.LEAVE_G:
    case MsgType.JOIN_G:
    case MsgType.DECLINE_G:
      return groupId(rng, ctx);
    case MsgType.SEND: {
      const body: { [key: string]: Value } = {
        id: rng.bytes(rng.chance(0.9) ? 16 : rng.int(0, 20)),
      };
      const to = rng.int(0, 5); // one target mostly, sometimes two or none
      if (to === 0 || to === 3) body.target_username = username(rng, ctx);
      if (to === 1 || to === 3) body.group_id = groupId(rng, ctx);
      if (to === 2 || rng.chance(0.1)) body.world = rng.chance(0.8) ? true : randomValue(rng, 2);
      const kind = rng.pick(["text", "text", "text", "image", "image", "file", "", "TEXT"]);
      body.type = kind;
      body.data = kind === "image" || kind === "file"
        ? rng.bytes(rng.int(0, 64))
        : rng.chance(0.8)
        ? text(rng)
        : randomValue(rng, 2);
      if (rng.chance(0.3)) body.name = text(rng);
      return body;
    }
    case MsgType.ACK:
      return rng.chance(0.7) ? rng.int(1, 100) : posInt(rng);
    case MsgType.WHO:
      return rng.chance(0.3) ? null : { offset: posInt(rng), limit: posInt(rng) };
    case MsgType.FILE_OFFER:
      return {
        target_username: username(rng, ctx),
        name: text(rng),
        size: posInt(rng),
        sha256: rng.bytes(rng.chance(0.9) ? 32 : rng.int(0, 40)),
      };
    case MsgType.FILE_ANSWER:
      return { transfer_id: posInt(rng), accept: rng.chance(0.5) };
    case MsgType.FILE_CHUNK:
      return { transfer_id: posInt(rng), offset: posInt(rng), data: rng.bytes(rng.int(0, 64)) };
    case MsgType.FILE_ACK:
      return { transfer_id: posInt(rng), received: posInt(rng), sha256_ok: rng.chance(0.5) };
    case MsgType.FILE_CANCEL:
      return { transfer_id: posInt(rng), reason: text(rng) };
    default:
      return randomValue(rng, 2);
  }
}

function knownUser(rng: Prng, ctx: BodyContext): string {
  return ctx.usernames.length > 0 ? rng.pick(ctx.usernames) : "fz" + rng.u32().toString(36);
}

function plainText(rng: Prng): string {
  let s = "";
  const n = rng.int(1, 30);
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(0x20, 0x7e));
  return s;
}

/**
 * A body that passes its request's schema and names users and groups that exist, so that the
 * request reaches the handler's own logic (a message sent, a group made, a file offered).
 */
export function validBody(rng: Prng, type: number, ctx: BodyContext = NO_USERS): Value {
  const transfer = () => rng.int(1, 20);
  switch (type) {
    case MsgType.LOGIN:
    case MsgType.REGISTER:
      return ["fz" + rng.u32().toString(36), "pw-" + plainText(rng) + "-long-enough"];
    case MsgType.LOGOUT:
      return null;
    case MsgType.RESUME:
      return rng.bytes(32);
    case MsgType.CHANGE_PASSWORD:
      return ["not-the-password", "pw-" + plainText(rng) + "-long-enough"];
    case MsgType.ADD_FRIEND:
    case MsgType.REMOVE_FRIEND:
    case MsgType.BLOCK:
    case MsgType.UNBLOCK:
    case MsgType.FIND_USER:
      return knownUser(rng, ctx);
    case MsgType.CREATE_G: {
      const members: Value[] = [];
      for (let i = rng.int(0, 3); i > 0; i--) members.push(knownUser(rng, ctx));
      return ["g " + plainText(rng).slice(0, 20), members];
    }
    case MsgType.INVITE:
      return [rng.int(1, ctx.maxGroupId), knownUser(rng, ctx)];
    case MsgType.QUERY_MEMBER:
    case MsgType.LEAVE_G:
    case MsgType.JOIN_G:
    case MsgType.DECLINE_G:
      return rng.int(1, ctx.maxGroupId);
    case MsgType.SEND: {
      const body: { [key: string]: Value } = { id: rng.bytes(16) };
      const to = rng.int(0, 2);
      if (to === 0) body.target_username = knownUser(rng, ctx);
      else if (to === 1) body.group_id = rng.int(1, ctx.maxGroupId);
      else body.world = true;
      if (to !== 2 && rng.chance(0.3)) {
        body.type = "image";
        body.data = rng.bytes(rng.int(1, 64));
        body.name = "a.png";
      } else {
        body.type = "text";
        body.data = plainText(rng);
      }
      return body;
    }
    case MsgType.ACK:
      return rng.int(1, 100);
    case MsgType.WHO:
      return { offset: rng.int(0, 10), limit: rng.int(1, 100) };
    case MsgType.FILE_OFFER:
      return {
        target_username: knownUser(rng, ctx),
        name: "f-" + plainText(rng).slice(0, 10),
        size: rng.int(0, 100_000),
        sha256: rng.bytes(32),
      };
    case MsgType.FILE_ANSWER:
      return { transfer_id: transfer(), accept: rng.chance(0.5) };
    case MsgType.FILE_CHUNK:
      return { transfer_id: transfer(), offset: rng.int(0, 1000), data: rng.bytes(rng.int(0, 64)) };
    case MsgType.FILE_ACK:
      return { transfer_id: transfer(), received: rng.int(0, 1000) };
    case MsgType.FILE_CANCEL:
      return { transfer_id: transfer(), reason: plainText(rng) };
    default:
      return null;
  }
}

/** 1 to 4 requests with valid bodies (see validBody). */
export function validRequests(rng: Prng, ctx: BodyContext = NO_USERS): Message[] {
  const out: Message[] = [];
  for (let n = rng.int(1, 4); n > 0; n--) {
    const type = rng.pick(REQUEST_TYPES);
    out.push({ type, id: rng.int(1, 1000), body: validBody(rng, type, ctx) });
  }
  return out;
}

/** One structural fault: a field dropped, retyped or added, or a list item changed. */
function perturb(rng: Prng, v: Value): Value {
  if (Array.isArray(v)) {
    const out = v.slice();
    const r = rng.int(0, 3);
    if (r === 0 && out.length > 0) out.splice(rng.int(0, out.length - 1), 1);
    else if (r === 1) out.push(randomValue(rng, 2));
    else if (out.length > 0) out[rng.int(0, out.length - 1)] = randomValue(rng, 2);
    return out;
  }
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Date)) {
    const out: { [key: string]: Value } = {};
    for (const [k, x] of Object.entries(v)) put(out, k, x);
    const keys = Object.keys(out);
    const r = rng.int(0, 3);
    if (r === 0 && keys.length > 0) delete out[rng.pick(keys)];
    else if (r === 1 && keys.length > 0) out[rng.pick(keys)] = randomValue(rng, 2);
    else if (r === 2 && keys.length > 0) out[rng.pick(keys)] = null;
    else put(out, randomKey(rng), randomValue(rng, 2));
    return out;
  }
  return randomValue(rng, 2);
}

/**
 * 1 to 4 messages: a request type with a near-valid body (`requestShare` of them), else a
 * random type (0 to 400, or any u32) with a random or near-valid body.
 */
export function randomMessages(
  rng: Prng,
  ctx: BodyContext = NO_USERS,
  requestShare = 0.4,
): Message[] {
  const out: Message[] = [];
  const n = rng.int(1, 4);
  for (let i = 0; i < n; i++) {
    const request = rng.chance(requestShare);
    const type = request ? rng.pick(REQUEST_TYPES) : rng.chance(0.7) ? rng.int(0, 400) : rng.u32();
    const body = request || rng.chance(0.3) ? nearValidBody(rng, type, ctx) : randomValue(rng, 2);
    out.push({ type, id: rng.chance(0.8) ? rng.int(1, 1000) : rng.u32(), body });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Where the length fields of an encoding are

/** Offsets of every value header in a valid encoding starting at `at`; returns its end. */
export function valueHeaders(b: Uint8Array, at: number, out: number[]): number {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = b[at];
  const length = view.getUint32(at + 1);
  out.push(at);
  const start = at + 5;
  const stop = start + length;
  if (tag === Tag.LIST) {
    for (let p = start; p < stop;) p = valueHeaders(b, p, out);
  } else if (tag === Tag.DICT) {
    for (let p = start; p < stop;) p = valueHeaders(b, p + 1 + b[p], out);
  }
  return stop;
}

/** Offsets of the u32 length fields of a valid value encoding. */
export function valueLengthFields(b: Uint8Array): number[] {
  const out: number[] = [];
  valueHeaders(b, 0, out);
  return out.map((h) => h + 1);
}

/** Offsets of the u32 fields of valid messages: type, id, and every value length. */
export function messageFields(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 0; at < b.length;) {
    const headers: number[] = [];
    const end = valueHeaders(b, at + 8, headers);
    out.push(at, at + 4, ...headers.map((h) => h + 1));
    at = end;
  }
  return out;
}

/** Offsets of the length headers of a stream of valid frames. */
export function frameFields(b: Uint8Array): number[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let at = 0; at + 4 <= b.length; at += 4 + view.getUint32(at)) out.push(at);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutations

const LENGTH_EDGES = [0, 1, 4, 5, 15, 16, 17, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

function randomLength(rng: Prng, old: number, remaining: number): number {
  switch (rng.int(0, 4)) {
    case 0:
      return rng.u32();
    case 1:
      return rng.pick(LENGTH_EDGES);
    case 2:
      return Math.max(0, old + rng.pick([-2, -1, 1, 2]));
    case 3:
      return Math.max(0, remaining + rng.int(-1, 1));
    default:
      return rng.int(0, 300);
  }
}

/** The parts back to back in one new array; a part may be a plain list of byte values. */
export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The head of `a` and the tail of `b`, cut at random points. */
export function splice(rng: Prng, a: Uint8Array, b: Uint8Array): Uint8Array {
  return concat(a.subarray(0, rng.int(0, a.length)), b.subarray(rng.int(0, b.length)));
}

/**
 * Applies 1 to 3 random mutations to a copy of `valid`: bit flips, byte insertion or deletion,
 * a length field overwritten (random, extreme, off by one), truncation, retagging, edge bytes,
 * and splicing with `other` when given. `lengthFields` are the offsets of u32 length fields.
 */
export function mutate(
  rng: Prng,
  valid: Uint8Array,
  lengthFields: readonly number[],
  other?: Uint8Array,
): Uint8Array {
  let b: Uint8Array = valid.slice();
  const rounds = rng.int(1, 3);
  for (let r = 0; r < rounds; r++) {
    const kind = rng.int(0, 8);
    if (kind === 0 && b.length > 0) {
      const flips = rng.int(1, 4);
      for (let i = 0; i < flips; i++) b[rng.int(0, b.length - 1)] ^= 1 << rng.int(0, 7);
    } else if (kind === 1) {
      const at = rng.int(0, b.length);
      b = concat(b.subarray(0, at), rng.bytes(rng.int(1, 4)), b.subarray(at));
    } else if (kind === 2 && b.length > 0) {
      const at = rng.int(0, b.length - 1);
      b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + rng.int(1, 4))));
    } else if ((kind === 3 || kind === 4) && lengthFields.length > 0) {
      // positions come from the valid encoding; earlier rounds may have shifted them
      const at = rng.pick(lengthFields);
      if (at + 4 <= b.length) {
        const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
        view.setUint32(at, randomLength(rng, view.getUint32(at), b.length - at - 4));
      }
    } else if (kind === 5) {
      b = b.slice(0, rng.int(0, b.length));
    } else if (kind === 6 && lengthFields.length > 0) {
      const at = rng.pick(lengthFields) - 1; // the tag before a value's length
      if (at >= 0 && at < b.length) b[at] = rng.chance(0.7) ? rng.int(0, 8) : rng.u32() & 0xff;
    } else if (kind === 7 && other) {
      b = rng.chance(0.5) ? splice(rng, b, other) : splice(rng, other, b);
    } else if (b.length > 0) {
      b[rng.int(0, b.length - 1)] = rng.pick([0, 1, 2, 0x7f, 0x80, 0xc0, 0xed, 0xff]);
    }
  }
  return b;
}
