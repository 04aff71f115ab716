/**
 * Each inbox's counts in the KV bucket `<prefix>_inboxes`, one key per user (its token): messages,
 * bytes, and per sender (for the share one sender may fill), with the time of the last
 * reservation. One key holds everything a limit check needs, so one compare-and-set both checks
 * and takes room: two nodes enqueueing to one inbox cannot both take its last place.
 *
 * The counts run ahead of the stream, never behind it: room is reserved BEFORE a message is
 * published and given back AFTER it is deleted. A node killed in between leaves an over-count
 * (limits err on the side of refusing), which `heal` corrects once a read sees the whole inbox.
 *
 * A heal races a removal: a message deleted before the heal's read but given back after its
 * write would be counted out twice (below the stream, even below zero). So each heal bumps `h`,
 * and a removal gives back its room only if no heal came since it looked, before deleting:
 * otherwise it leaves an over-count, which the next heal corrects.
 */

import { shareOf } from "../inbox.ts";
import type { InboxLimits } from "../types.ts";
import { type Change, type Codec, valueInvariant } from "./cas.ts";

export interface Counts {
  /** Messages. */
  n: number;
  /** Bytes (messageSize). */
  b: number;
  /** Per sender (identity): messages and bytes. Senders at zero are left out. */
  s: { [sender: string]: [number, number] };
  /** Wall time (ms) of the last reservation: a heal leaves alone counts this recent. */
  t: number;
  /** Heals so far (absent: none). */
  h?: number;
}

export const countsCodec: Codec<Counts> = {
  encode: (v) => new TextEncoder().encode(JSON.stringify(v)),
  decode: (b) => JSON.parse(new TextDecoder().decode(b)) as Counts,
  empty: () => ({ n: 0, b: 0, s: {}, t: 0 }),
};

/**
 * How long after its last reservation an inbox's counts may be corrected by a read: a message
 * reserved for but not yet published (its publish retries for up to ~30 s) must not be counted
 * out by a read that came before it.
 */
export const HEAL_AFTER_MS = 60_000;

export type Room = "full" | "capped" | null;

function roomFor(v: Counts, sender: string, size: number, limits: InboxLimits): Room {
  if (v.n + 1 > limits.maxMessages || v.b + size > limits.maxBytes) return "full";
  const percent = limits.senderSharePercent ?? 100;
  const mine = v.s[sender];
  if (percent >= 100 || !mine) return null;
  const share = shareOf(limits, percent);
  return mine[0] + 1 > share.messages || mine[1] + size > share.bytes ? "capped" : null;
}

/** Adds `n` messages of `bytes` from `sender` (negative: takes them out). */
function plus(v: Counts, sender: string, n: number, bytes: number, now?: number): Counts {
  const s = { ...v.s };
  const mine = s[sender] ?? [0, 0];
  const next: [number, number] = [mine[0] + n, mine[1] + bytes];
  valueInvariant(
    next[0] >= 0 && next[1] >= 0 && v.n + n >= 0 && v.b + bytes >= 0,
    "inbox counts stay at or above zero",
  );
  if (next[0] <= 0) delete s[sender];
  else s[sender] = next;
  return {
    n: Math.max(0, v.n + n),
    b: Math.max(0, v.b + bytes),
    s,
    t: now ?? v.t,
    ...(v.h === undefined ? {} : { h: v.h }),
  };
}

/** Takes room for one message unless the inbox, or this sender's share of it, is full. */
export function reserve(
  sender: string,
  size: number,
  limits: InboxLimits,
  now: number,
): Change<Counts, Room> {
  return (v) => {
    const why = roomFor(v, sender, size, limits);
    return why ? { next: v, result: why } : { next: plus(v, sender, 1, size, now), result: null };
  };
}

/** The heals a removal saw before it deleted (see the header). */
export function healsOf(v: Counts | undefined): number {
  return v?.h ?? 0;
}

/**
 * Gives back the room of deleted messages: `gone` per sender, messages and bytes, unless a heal
 * came after `heals` (healsOf the counts before the deletes): it may have counted them out.
 */
export function release(gone: Map<string, [number, number]>, heals: number): Change<Counts, void> {
  return (v) => {
    if (healsOf(v) !== heals) return { next: v, result: undefined };
    let next = v;
    for (const [sender, [n, bytes]] of gone) next = plus(next, sender, -n, -bytes);
    return { next, result: undefined };
  };
}

/**
 * A read saw the whole inbox (`actual`): counts above it that no reservation touched for
 * HEAL_AFTER_MS are left by a node that died between its reservation and its publish, and are
 * set to what is there. Only ever lowers: a count below the stream is not this function's to fix.
 */
export function heal(actual: Counts, now: number): Change<Counts, boolean> {
  return (v) => {
    const over = v.n > actual.n || v.b > actual.b;
    if (!over || now - v.t < HEAL_AFTER_MS) return { next: v, result: false };
    return { next: { ...actual, t: v.t, h: healsOf(v) + 1 }, result: true };
  };
}

/** The counts of a list of messages (sender, size). */
export function countOf(items: Iterable<{ sender: string; size: number }>): Counts {
  let v = countsCodec.empty();
  for (const { sender, size } of items) v = plus(v, sender, 1, size);
  return v;
}
