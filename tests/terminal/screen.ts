/**
 * A terminal for the line editor's tests: a grid `width` columns wide that wraps at the right
 * edge (as a real one does), wide characters taking two cells, and the few sequences the editor
 * writes (carriage return, line feed, cursor up/down/right/left, erase line).
 */

import { graphemeWidth } from "../../src/terminal/terminal.ts";

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

export class Screen {
  readonly #rows: string[][] = [[]];
  row = 0;
  col = 0;

  constructor(readonly width: number) {}

  write(text: string): void {
    // deno-lint-ignore no-control-regex
    for (const part of text.split(/(\x1b\[[0-9;]*[A-Za-z])/)) {
      // deno-lint-ignore no-control-regex
      const csi = /^\x1b\[([0-9;]*)([A-Za-z])$/.exec(part);
      if (csi) this.#csi(Number(csi[1] || 1), csi[1], csi[2]);
      else for (const { segment } of segmenter.segment(part)) this.#put(segment);
    }
  }

  #csi(n: number, raw: string, final: string): void {
    if (final === "A") this.row = Math.max(0, this.row - n);
    else if (final === "B") this.row += n;
    else if (final === "C") this.col = Math.min(this.width - 1, this.col + n);
    else if (final === "D") this.col = Math.max(0, Math.min(this.col, this.width - 1) - n);
    else if (final === "K") {
      const cells = this.#line();
      cells.splice(raw === "2" ? 0 : this.col);
    } else throw new Error(`The editor wrote an unexpected sequence: ESC [${raw}${final}`);
  }

  #line(): string[] {
    while (this.#rows.length <= this.row) this.#rows.push([]);
    return this.#rows[this.row];
  }

  #put(g: string): void {
    if (g === "\r") this.col = 0;
    else if (g === "\n" || g === "\r\n") {
      if (g === "\r\n") this.col = 0;
      this.row++;
      this.#line();
    } else {
      const w = graphemeWidth(g);
      // The cursor may stand past the last column; the next character wraps.
      if (this.col + w > this.width) {
        this.row++;
        this.col = 0;
      }
      const cells = this.#line();
      while (cells.length < this.col) cells.push(" ");
      cells[this.col] = g;
      if (w === 2) cells[this.col + 1] = "";
      this.col += w;
    }
  }

  /** The rows as shown, trailing blanks trimmed. */
  lines(): string[] {
    return this.#rows.map((cells) => cells.join("").trimEnd());
  }

  /** The rows that show something. */
  shown(): string[] {
    return this.lines().filter((l) => l !== "");
  }
}
