/**
 * The backup file: JSON lines, written by `parley admin backup`, read by `parley admin restore`.
 *
 *   {"format":"parley-backup","version":1,"parley":"0.1.0","created":"2026-11-23T12:00:00.000Z"}
 *   {"identity":"<64 hex digits: the server's Ed25519 seed>"}        (absent if there was none)
 *   {"k":[…key…],"v":…value…}                                        one line per KV entry
 *   {"k":[…],"v":…,"x":1767225600000}                                 an entry with an expiry (ms)
 *   {"end":{"entries":1234}}                                          last: a truncated file shows
 *
 * Keys and values use the tagged JSON of tagged_json.ts, so every entry comes back exactly.
 */

import { VERSION } from "../version.ts";
import { decodeKey, decodeValue, encodeKey, encodeValue } from "./tagged_json.ts";

export const BACKUP_FORMAT = "parley-backup";
export const BACKUP_VERSION = 1;

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  /** The Parley version that wrote it. */
  parley: string;
  created: string;
}

export type BackupLine =
  | { kind: "identity"; seed: Uint8Array }
  | { kind: "entry"; key: Deno.KvKey; value: unknown; expiresAt?: number }
  | { kind: "end"; entries: number };

export function headerLine(created = new Date()): string {
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    parley: VERSION,
    created: created.toISOString(),
  };
  return JSON.stringify(header);
}

export function identityLine(seed: Uint8Array): string {
  return JSON.stringify({ identity: seed.toHex() });
}

export function entryLine(key: Deno.KvKey, value: unknown, expiresAt?: number): string {
  const line: Record<string, unknown> = { k: encodeKey(key), v: encodeValue(value) };
  if (expiresAt !== undefined) line.x = expiresAt;
  return JSON.stringify(line);
}

export function endLine(entries: number): string {
  return JSON.stringify({ end: { entries } });
}

/** One line of a backup file as a JSON object; throws a SyntaxError that says what it is not. */
export function parseJson(text: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SyntaxError("it is not valid JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SyntaxError("it is not a JSON object");
  }
  return json as Record<string, unknown>;
}

function onlyFields(json: Record<string, unknown>, fields: string[]): void {
  const extra = Object.keys(json).find((k) => !fields.includes(k));
  if (extra !== undefined) throw new SyntaxError(`it has an unknown field "${extra}"`);
}

/** The first line; throws SyntaxError when the file is not a backup this version can read. */
export function parseHeader(text: string): BackupHeader {
  let json: Record<string, unknown>;
  try {
    json = parseJson(text);
  } catch {
    throw new SyntaxError("it is not a Parley backup header");
  }
  if (json.format !== BACKUP_FORMAT) throw new SyntaxError("it is not a Parley backup header");
  const { version, parley, created } = json;
  if (!Number.isInteger(version) || (version as number) < 1) {
    throw new SyntaxError("the header has no valid format version");
  }
  if ((version as number) > BACKUP_VERSION) {
    throw new SyntaxError(
      `the backup is format version ${version}, newer than this Parley reads ` +
        `(${BACKUP_VERSION}); restore it with the Parley ${String(parley)} that made it, or newer`,
    );
  }
  if (typeof parley !== "string" || typeof created !== "string") {
    throw new SyntaxError('the header needs "parley" and "created" strings');
  }
  return json as unknown as BackupHeader;
}

/** Any line after the header; throws SyntaxError saying what is wrong with it. */
export function parseLine(text: string): BackupLine {
  const json = parseJson(text);
  if ("identity" in json) {
    onlyFields(json, ["identity"]);
    const hex = json.identity;
    if (typeof hex !== "string" || !/^[0-9a-f]{64}$/.test(hex)) {
      throw new SyntaxError("the identity key must be 64 lowercase hex digits");
    }
    return { kind: "identity", seed: Uint8Array.fromHex(hex) };
  }
  if ("end" in json) {
    onlyFields(json, ["end"]);
    const end = json.end as Record<string, unknown> | null;
    const entries = typeof end === "object" && end !== null ? end.entries : undefined;
    if (!Number.isInteger(entries) || (entries as number) < 0) {
      throw new SyntaxError("the end line needs a count of entries");
    }
    return { kind: "end", entries: entries as number };
  }
  if (!("k" in json) || !("v" in json)) throw new SyntaxError('an entry needs "k" and "v"');
  onlyFields(json, ["k", "v", "x"]);
  const key = decodeKey(json.k);
  if (key.length === 0) throw new SyntaxError("an entry's key cannot be empty");
  const value = decodeValue(json.v);
  if (json.x === undefined) return { kind: "entry", key, value };
  if (!Number.isSafeInteger(json.x)) throw new SyntaxError('"x" must be a time in ms');
  return { kind: "entry", key, value, expiresAt: json.x as number };
}
