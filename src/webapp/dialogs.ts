/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page's dialogs (native <dialog>: Esc closes them, focus stays inside): the server key on
 * first contact, the conversation switcher (Ctrl+K), and a small prompt.
 */

import { byId, el } from "./dom.ts";

/**
 * The user refused the server's key on first contact: their choice, said plainly and open to a
 * retry (unlike a changed key, which may be an interception and is refused loudly).
 */
export class KeyNotTrustedError extends Error {
  override name = "KeyNotTrustedError";
  constructor() {
    super(
      "You chose not to trust this server's key, so nothing was sent. Compare its fingerprint " +
        "with the one the server's operator published, then try again.",
    );
  }
}

/** Asks whether to trust the server's key on first contact; resolves true only for "Trust". */
export function askTrustKey(fingerprint: string): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>("key-dialog");
  byId("key-fingerprint").textContent = fingerprint;
  dialog.returnValue = "";
  dialog.showModal();
  byId("key-refuse").focus();
  return new Promise((resolve) =>
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true })
  );
}

/** The conversation switcher: Ctrl+K (or Cmd+K) opens it; the choice goes to `open`. */
export function installSwitcher(options: () => string[], open: (what: string) => void): void {
  const dialog = byId<HTMLDialogElement>("switch-dialog");
  const input = byId<HTMLInputElement>("switch-input");
  const list = byId<HTMLDataListElement>("switch-options");
  const show = () => {
    list.replaceChildren(...options().map((o) => el("option", { value: o })));
    input.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  };
  byId("switch-button").addEventListener("click", show);
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
      e.preventDefault();
      if (!dialog.open) show();
    }
  });
  dialog.addEventListener("close", () => {
    const what = input.value.trim();
    if (dialog.returnValue === "go" && what) open(what);
  });
}

/**
 * A prompt with some lines of content and, if `placeholder` is given, a field; resolves with the
 * field's value (or "" for OK without a field), or null when closed.
 */
export function prompt(
  title: string,
  lines: string[],
  placeholder?: string,
  type: "text" | "password" = "text",
): Promise<string | null> {
  const dialog = byId<HTMLDialogElement>("prompt-dialog");
  const input = byId<HTMLInputElement>("prompt-input");
  byId("prompt-title").textContent = title;
  byId("prompt-body").replaceChildren(...lines.map((l) => el("p", {}, l)));
  input.hidden = placeholder === undefined;
  input.placeholder = placeholder ?? "";
  input.type = type;
  input.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  if (placeholder !== undefined) input.focus();
  return new Promise((resolve) =>
    dialog.addEventListener(
      "close",
      () => {
        const value = type === "password" ? input.value : input.value.trim();
        input.value = "";
        resolve(dialog.returnValue === "ok" ? value : null);
      },
      { once: true },
    )
  );
}
