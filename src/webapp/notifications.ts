/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Desktop notifications, only once the user has allowed them: the permission is asked by a
 * button (browsers ignore, or hold against a site, a request made on load), and a notification
 * is shown only while the page is not in front.
 */

import { byId } from "./dom.ts";

export class Notifications {
  readonly #button = byId<HTMLButtonElement>("notify-button");

  constructor() {
    this.#button.addEventListener("click", async () => {
      await Notification.requestPermission();
      this.#button.hidden = Notification.permission !== "default";
    });
  }

  /** Shows the button where the permission can still be asked (once logged in: not before). */
  offer(): void {
    this.#button.hidden = !("Notification" in globalThis) || Notification.permission !== "default";
  }

  get allowed(): boolean {
    return "Notification" in globalThis && Notification.permission === "granted";
  }

  /** Shows `body` from `title` if allowed and the page is hidden; a click brings the page back. */
  show(title: string, body: string, onClick?: () => void): void {
    if (!this.allowed || (document.visibilityState === "visible" && document.hasFocus())) return;
    const n = new Notification(title, { body, tag: title });
    n.onclick = () => {
      globalThis.focus();
      onClick?.();
      n.close();
    };
  }
}
