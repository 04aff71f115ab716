/** How chat looks in the terminal: time, conversation and sender at a glance; colour on a TTY. */

import type { HistoryEntry } from "./history.ts";
import { visible, visibleLines } from "../terminal/safe_text.ts";

const CODES = {
  dim: 2,
  bold: 1,
  red: 31,
  green: 32,
  yellow: 33,
  blue: 34,
  magenta: 35,
  cyan: 36,
} as const;
export type Style = keyof typeof CODES;

export class Painter {
  constructor(readonly colors: boolean) {}

  paint(text: string, ...styles: Style[]): string {
    if (!this.colors || styles.length === 0) return text;
    return `\x1b[${styles.map((s) => CODES[s]).join(";")}m${text}\x1b[0m`;
  }

  /** A stable colour per name, so each person is easy to follow. */
  person(name: string): string {
    const palette: Style[] = ["cyan", "green", "yellow", "magenta", "blue"];
    let h = 0;
    for (const c of name.toLowerCase()) h = (h * 31 + c.codePointAt(0)!) >>> 0;
    return this.paint(name, "bold", palette[h % palette.length]);
  }
}

export function clock(iso: string | Date): string {
  const d = typeof iso === "string" ? new Date(iso) : iso;
  const now = new Date();
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  if (d.toDateString() === now.toDateString()) return hm;
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${
    String(d.getDate()).padStart(2, "0")
  } ${hm}`;
}

/**
 * One message as a block: "[12:04] #5 hikers <alice> text", continuation lines indented. The
 * sender, the text and the label came from the network (history holds them as received), so
 * they are shown through `visible`: nothing in them acts on the terminal.
 */
export function formatEntry(
  p: Painter,
  label: string,
  entry: HistoryEntry,
  showLabel: boolean,
): string {
  const head = `${p.paint(`[${clock(entry.time)}]`, "dim")} ${
    showLabel ? p.paint(visible(label), "bold") + " " : ""
  }`;
  const who = entry.kind === "note" ? "" : `<${p.person(visible(entry.from))}> `;
  let body = visibleLines(entry.text);
  if (entry.kind === "image") body = `${p.paint("[image]", "magenta")} ${body}`;
  if (entry.kind === "file") body = `${p.paint("[file]", "magenta")} ${body}`;
  if (entry.kind === "note") body = p.paint(body, "dim");
  const lines = body.split("\n");
  const indent = " ".repeat(Math.min(8, clock(entry.time).length + 3));
  return head + who + lines[0] + lines.slice(1).map((l) => `\n${indent}${l}`).join("");
}

/** A progress bar: "[#####.....] 52% 10.4/20.0 MiB". */
export function progressBar(done: number, total: number, width = 24): string {
  const ratio = total === 0 ? 1 : done / total;
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${
    String(Math.floor(ratio * 100)).padStart(3)
  }% ` +
    `${formatSize(done)}/${formatSize(total)}`;
}

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
