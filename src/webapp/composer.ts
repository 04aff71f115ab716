/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The message box: Enter sends, Shift+Enter starts a new line; the Image and File buttons and a
 * file dropped on the box hand the file to the chat, which decides (image or file offer).
 */

import { byId } from "./dom.ts";

export interface ComposerActions {
  /** False when the text was refused (too long...): the box then keeps it, to be shortened. */
  text(text: string): boolean;
  image(file: File): void;
  file(file: File): void;
}

export class Composer {
  readonly #form = byId<HTMLFormElement>("composer");
  readonly #text = byId<HTMLTextAreaElement>("composer-text");
  /** Where the open conversation's draft is kept (sessionStorage: it survives a reload). */
  #draft: string | null = null;

  constructor(actions: ComposerActions) {
    const send = () => {
      const text = this.#text.value;
      if (text.trim() === "") return;
      if (actions.text(text)) {
        this.#text.value = "";
        this.#save();
      }
    };
    this.#text.addEventListener("input", () => this.#save());
    this.#form.addEventListener("submit", (e) => {
      e.preventDefault();
      send();
    });
    this.#text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send();
      }
    });
    const picked = (input: HTMLInputElement, use: (f: File) => void) =>
      input.addEventListener("change", () => {
        for (const f of input.files ?? []) use(f);
        input.value = "";
      });
    // Real buttons open the hidden pickers, so that the keyboard reaches them too.
    for (const [name, use] of [["image", actions.image], ["file", actions.file]] as const) {
      const input = byId<HTMLInputElement>(`${name}-input`);
      picked(input, use);
      byId(`${name}-button`).addEventListener("click", () => input.click());
    }
    this.#form.addEventListener("dragover", (e) => {
      e.preventDefault();
      this.#form.classList.add("dragging");
    });
    this.#form.addEventListener("dragleave", () => this.#form.classList.remove("dragging"));
    this.#form.addEventListener("drop", (e) => {
      e.preventDefault();
      this.#form.classList.remove("dragging");
      for (const f of e.dataTransfer?.files ?? []) {
        (f.type.startsWith("image/") ? actions.image : actions.file)(f);
      }
    });
  }

  /** Shows the draft of the conversation now open (`key`: the user's and the conversation's). */
  use(key: string): void {
    this.#draft = `parley-draft:${key}`;
    this.#text.value = sessionStorage.getItem(this.#draft) ?? "";
  }

  #save(): void {
    if (this.#draft === null) return;
    const text = this.#text.value;
    if (text) sessionStorage.setItem(this.#draft, text);
    else sessionStorage.removeItem(this.#draft);
  }

  focus(): void {
    this.#text.focus();
  }

  /** Whether the box takes messages now (no conversation open: it does not). */
  set enabled(yes: boolean) {
    this.#text.disabled = !yes;
  }
}
