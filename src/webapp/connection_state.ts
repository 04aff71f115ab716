/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/** The connection line in the header: what the link is doing, loud when it is down. */

import { byId } from "./dom.ts";

export type LinkState = "connecting" | "online" | "down" | "ended";

export class ConnectionState {
  readonly #line = byId("status");
  #state: LinkState = "connecting";

  get state(): LinkState {
    return this.#state;
  }

  set(state: LinkState, text: string): void {
    this.#state = state;
    this.#line.textContent = text;
    this.#line.title = text;
    this.#line.classList.toggle("down", state === "down" || state === "ended");
    document.body.dataset.link = state;
  }
}
