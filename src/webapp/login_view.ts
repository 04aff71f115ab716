/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The login form: log in, or create the account (with an invitation code where the server asks
 * for one). The password goes only to the server, over the channel whose key was pinned.
 */

import { KeyNotTrustedError } from "./dialogs.ts";
import { byId } from "./dom.ts";

export interface Credentials {
  username: string;
  password: string;
  register: boolean;
  invite?: string;
}

export class LoginView {
  readonly #view = byId("login-view");
  readonly #form = byId<HTMLFormElement>("login-form");
  readonly #user = byId<HTMLInputElement>("login-user");
  readonly #password = byId<HTMLInputElement>("login-password");
  readonly #invite = byId<HTMLInputElement>("login-invite");
  readonly #error = byId("login-error");

  /** Shows the form until `attempt` succeeds with what the user typed. */
  show(lastUser: string, attempt: (c: Credentials) => Promise<void>): Promise<void> {
    this.#view.hidden = false;
    this.#user.value ||= lastUser;
    (lastUser ? this.#password : this.#user).focus();
    return new Promise((resolve) => {
      let busy = false;
      let last = false;
      const retry = byId<HTMLButtonElement>("login-retry");
      const go = async (register: boolean) => {
        if (busy || !this.#form.reportValidity()) return;
        busy = true;
        last = register;
        retry.hidden = true;
        this.#error.textContent = register ? "Creating the account…" : "Logging in…";
        try {
          await attempt({
            username: this.#user.value.trim(),
            password: this.#password.value,
            register,
            invite: this.#invite.value.trim() || undefined,
          });
          this.#password.value = "";
          this.#error.textContent = "";
          this.#view.hidden = true;
          resolve();
        } catch (e) {
          this.#error.textContent = (e as Error).message;
          retry.hidden = !(e instanceof KeyNotTrustedError);
        } finally {
          busy = false;
        }
      };
      this.#form.addEventListener("submit", (e) => {
        e.preventDefault();
        void go(false);
      });
      byId("register-button").addEventListener("click", () => void go(true));
      retry.addEventListener("click", () => void go(last));
    });
  }

  error(text: string): void {
    this.#view.hidden = false;
    this.#error.textContent = text;
  }
}
