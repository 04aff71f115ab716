/** Plain-text output for operators: aligned tables, sizes, times. */

import { hasHidden, visible } from "../terminal/safe_text.ts";

/**
 * A table cell shows whole up to this: a group's member list (500 members of up to 32
 * characters) fits; a cell is only cut when something is wrong.
 */
const CELL_CHARS = 20_000;

/**
 * Columns padded to their widest cell; the last column is not padded. Names and group names
 * in cells were chosen by clients, so every cell is shown through `visible`.
 */
export function table(cells: string[][]): string {
  const rows = cells.map((r) => r.map((cell) => visible(cell, CELL_CHARS)));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join("  "))
    .join("\n");
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function bytes(n: number): string {
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${UNITS[unit]}`;
}

/** "2026-11-23 12:00" in UTC, the way logs and servers are read. */
export function minute(date: Date): string {
  return date.toISOString().slice(0, 16).replace("T", " ");
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but not C1 controls, bidi or
 * zero-width characters; those are escaped here too (as \uXXXX, so the document means the same).
 */
export function terminalJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2);
  if (!hasHidden(text.replaceAll("\n", ""))) return text;
  let out = "";
  for (const c of text) {
    out += c !== "\n" && hasHidden(c)
      ? [...Array(c.length).keys()].map((i) =>
        `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`
      ).join("")
      : c;
  }
  return out;
}
