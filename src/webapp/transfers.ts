/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * File transfers in the page: an offer waits for Accept or Deny; a transfer shows a progress
 * bar, then its SHA-256 (computed by the page over the bytes it kept) and whether it matched
 * the sender's. A received file is held in memory and saved on demand through a download link.
 */

import type { FileSink, FileSource, TransferResult } from "../client/files.ts";
import { button, byId, el, formatSize } from "./dom.ts";

export interface Offer {
  transfer_id: number;
  source_username: string;
  name: string;
  size: number;
  sha256: Uint8Array;
}

/** One transfer's line: a label, a progress bar and, at the end, its result. */
export class TransferLine {
  readonly item: HTMLLIElement;
  readonly #bar: HTMLProgressElement;
  readonly #state: HTMLSpanElement;

  constructor(label: string, size: number, attrs: Record<string, string>) {
    this.#bar = el("progress", { max: String(Math.max(size, 1)), value: "0" });
    this.#state = el("span", { class: "state" });
    this.item = el("li", attrs, `${label} (${formatSize(size)}) `, this.#bar, " ", this.#state);
    byId("transfers").append(this.item);
  }

  progress = (done: number, size: number): void => {
    this.#bar.max = Math.max(size, 1);
    this.#bar.value = size === 0 ? 1 : done;
  };

  finish(text: string, ok: boolean, ...extra: Node[]): void {
    this.#state.replaceChildren(el("span", { class: ok ? "ok" : "bad" }, text), ...extra);
    this.item.dataset.done = ok ? "ok" : "failed";
  }

  remove(): void {
    this.item.remove();
  }
}

/** The lowercase hex SHA-256 of some bytes, by WebCrypto. */
export async function sha256Hex(data: BufferSource): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data)).toHex();
}

/** A FileSource over a File the user picked or dropped: read in slices, never whole. */
export function fileSource(file: File): FileSource {
  return {
    size: file.size,
    read: async (offset, length) =>
      new Uint8Array(await file.slice(offset, offset + length).arrayBuffer()),
  };
}

/** A sink that keeps the chunks, to make a Blob of them once the transfer is done. */
export class MemorySink implements FileSink {
  readonly parts: Uint8Array[] = [];
  write(data: Uint8Array): Promise<void> {
    this.parts.push(data.slice());
    return Promise.resolve();
  }
  blob(): Blob {
    return new Blob(this.parts as BlobPart[]);
  }
}

export interface OfferAnswer {
  accept(offer: Offer, sink: MemorySink, line: TransferLine): Promise<TransferResult>;
  deny(offer: Offer): Promise<void>;
}

/** Shows an incoming offer with Accept and Deny; on Accept, receives it and shows the result. */
export function showOffer(offer: Offer, answer: OfferAnswer, report: (text: string) => void) {
  const expected = offer.sha256.toHex();
  const line = new TransferLine(`${offer.source_username} offers "${offer.name}"`, offer.size, {
    "data-transfer": String(offer.transfer_id),
  });
  const accept = button("Accept", async () => {
    accept.remove();
    deny.remove();
    const sink = new MemorySink();
    try {
      const result = await answer.accept(offer, sink, line);
      const blob = sink.blob();
      const actual = await sha256Hex(await blob.arrayBuffer());
      const ok = result.sha256Ok && actual === expected;
      const url = URL.createObjectURL(blob);
      line.finish(
        ok ? `received, SHA-256 ${actual} verified ` : `SHA-256 MISMATCH: got ${actual}, ` +
          `the sender's is ${expected} `,
        ok,
        el("a", { href: url, download: offer.name, "data-sha256": actual }, "Save"),
      );
    } catch (e) {
      line.finish(`not received: ${(e as Error).message}`, false);
    }
  }, { "data-action": "accept" });
  const deny = button("Deny", async () => {
    try {
      await answer.deny(offer);
      line.remove();
      report(`Declined "${offer.name}" from ${offer.source_username}.`);
    } catch (e) {
      report(`Could not decline: ${(e as Error).message}`);
    }
  }, { "data-action": "deny" });
  line.item.append(" ", accept, " ", deny);
  return line;
}
