/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The open conversation's messages. Images are shown from a blob: URL of their bytes (the
 * browser decodes them; the CSP allows img-src blob:) with a link that saves them on demand;
 * the URLs are revoked when the conversation changes, so switching does not leak memory.
 */

import { imageFormat } from "../client/outgoing.ts";
import { byId, el, formatSize, formatTime } from "./dom.ts";
import type { HistoryEntry } from "./history_store.ts";

const IMAGE_TYPES: Record<string, string> = {
  PNG: "image/png",
  JPEG: "image/jpeg",
  GIF: "image/gif",
  WebP: "image/webp",
};

export class MessageView {
  readonly #list = byId<HTMLOListElement>("messages");
  readonly #title = byId("conversation-title");
  #urls: string[] = [];
  #ids = new Set<string>();

  /** Replaces what is shown with a conversation's title and entries. */
  show(title: string, entries: HistoryEntry[], me: string): void {
    for (const url of this.#urls) URL.revokeObjectURL(url);
    this.#urls = [];
    this.#ids.clear();
    this.#title.textContent = title;
    this.#list.replaceChildren();
    for (const e of entries) this.add(e, me);
  }

  /** Appends one entry, unless already shown (a message listed as it arrives). */
  add(entry: HistoryEntry, me: string): void {
    if (entry.kind !== "note") {
      if (this.#ids.has(`${entry.from.toLowerCase()}/${entry.id}`)) return;
      this.#ids.add(`${entry.from.toLowerCase()}/${entry.id}`);
    }
    const mine = entry.from.toLowerCase() === me.toLowerCase();
    const item = el(
      "li",
      { class: entry.kind === "note" ? "note" : mine ? "mine" : "", "data-id": entry.id },
      el("span", { class: "time" }, formatTime(entry.time)),
      entry.kind === "note" ? null : el("span", { class: "from" }, entry.from),
    );
    if (entry.kind === "image" && entry.image) item.append(this.#image(entry, entry.image));
    else item.append(entry.text);
    const atBottom = this.#list.scrollHeight - this.#list.scrollTop - this.#list.clientHeight < 40;
    this.#list.append(item);
    if (atBottom || mine) item.scrollIntoView({ block: "end" });
  }

  /**
   * A message of ours the server has not taken yet (`failed` null: still being sent), marked so;
   * dropped once it is sent, when the stored message takes its place.
   */
  pending(entry: HistoryEntry, failed: string | null): void {
    this.drop(entry.id);
    const item = el(
      "li",
      { class: failed === null ? "mine pending" : "mine failed", "data-local": entry.id },
      el("span", { class: "time" }, formatTime(entry.time)),
      el("span", { class: "from" }, entry.from),
      entry.text,
      el("span", { class: "mark" }, failed === null ? "sending…" : `not sent: ${failed}`),
    );
    this.#list.append(item);
    item.scrollIntoView({ block: "end" });
  }

  /** Removes a pending message from the view, if shown. */
  drop(localId: string): void {
    this.#list.querySelector(`li[data-local="${localId}"]`)?.remove();
  }

  /** A note in the open conversation only (not kept): an error, a transfer's result. */
  note(text: string): void {
    this.add({ id: "", from: "", time: new Date().toISOString(), kind: "note", text }, "");
  }

  #image(entry: HistoryEntry, bytes: Uint8Array): HTMLElement {
    const name = entry.name || `${entry.id.slice(0, 8)}.img`;
    const type = IMAGE_TYPES[imageFormat(bytes) ?? ""] ?? "application/octet-stream";
    const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
    this.#urls.push(url);
    return el(
      "figure",
      { class: "image" },
      el("img", { src: url, alt: name, title: name }),
      el(
        "figcaption",
        {},
        `${name} (${formatSize(bytes.length)}) `,
        el("a", { href: url, download: name }, "Save"),
      ),
    );
  }
}
