/**
 * The world of a browser test: a real `parley serve` child with its web port on, real Chromium
 * pages of the web client (each user in a browser context of its own, so with its own
 * IndexedDB), and terminal users (the real CLI) beside them.
 */

import { join } from "node:path";
import { ChatProcess, fastConfig, Output, parley } from "../helpers/cli.ts";
import type { Browser, Page } from "./browser.ts";

/** `parley serve` with the web listener on loopback, as an operator runs it. */
export class WebServerProcess {
  private constructor(
    readonly child: Deno.ChildProcess,
    readonly out: Output,
    readonly port: number,
    /** The web client's origin, "http://127.0.0.1:PORT". */
    readonly origin: string,
    readonly fingerprint: string,
  ) {}

  static async start(
    dir: string,
    ports = { chat: 0, web: 0 },
    data = "data",
  ): Promise<WebServerProcess> {
    const child = parley([
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      String(ports.chat),
      "--web-host",
      "127.0.0.1",
      "--web-port",
      String(ports.web),
      "--data",
      join(dir, data),
      "--config",
      join(dir, "config.json"),
    ]).spawn();
    const out = new Output(child.stdout);
    void new Output(child.stderr);
    const m = await out.waitFor(
      /server\.listening addr=127\.0\.0\.1:(\d+) web=(http:\/\/127\.0\.0\.1:\d+)\/ .*fingerprint=(\S+)/,
    );
    return new WebServerProcess(child, out, Number(m[1]), m[2], m[3]);
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  get webPort(): number {
    return Number(new URL(this.origin).port);
  }

  async stop(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
    await this.child.status;
    await this.out.done;
  }
}

export interface WebWorld {
  dir: string;
  server: WebServerProcess;
  browser: Browser;
  /** Kills the server (SIGKILL: a crash); start() brings it back on the same ports. */
  crash(): Promise<void>;
  /**
   * Starts the crashed server again on the same ports, on the same data or on a fresh data dir
   * (a new identity key at the same address).
   */
  start(freshData?: boolean): Promise<void>;
  /** A terminal user, registered, in the chat. */
  terminal(user: string): Promise<ChatProcess>;
}

/** Runs `fn` with a fresh server and data in a temp dir, and pages in `browser`. */
export async function withWebWorld(
  browser: Browser,
  fn: (w: WebWorld) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-web-" });
  await fastConfig(dir);
  const chats: ChatProcess[] = [];
  let server = await WebServerProcess.start(dir);
  const w: WebWorld = {
    dir,
    server,
    browser,
    async crash() {
      await server.stop("SIGKILL");
    },
    async start(freshData = false) {
      const ports = { chat: server.port, web: server.webPort };
      w.server = server = await WebServerProcess.start(dir, ports, freshData ? "other" : "data");
    },
    async terminal(user) {
      const c = ChatProcess.start(["connect", server.addr, "--user", user, "--register"], {
        PARLEY_CONFIG_DIR: join(dir, user, "config"),
        PARLEY_ACCEPT_NEW_KEY: "1",
        PARLEY_DATA_DIR: join(dir, user, "data"),
        PARLEY_PASSWORD: `password-${user}`,
      });
      chats.push(c);
      await c.out.waitFor(new RegExp(`Logged in as ${user} `));
      return c;
    },
  };
  try {
    await fn(w);
  } finally {
    for (const c of chats) await c.kill();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Lets the page show notifications (as if the user had allowed them) and records them in
 * `globalThis.shown` instead; the page counts as not in front (hasFocus false), as when the
 * user is in another window. The script is the test's, added through DevTools before the page's.
 */
async function recordNotifications(page: Page, origin: string): Promise<void> {
  await page.browserContext().overridePermissions(origin, ["notifications"]);
  await page.evaluateOnNewDocument(() => {
    const shown: { title: string; body: string }[] = [];
    Object.assign(globalThis, { shown });
    document.hasFocus = () => false;
    // deno-lint-ignore no-explicit-any
    const Real = (globalThis as any).Notification;
    // deno-lint-ignore no-explicit-any
    (globalThis as any).Notification = class extends Real {
      constructor(title: string, options: { body: string }) {
        super(title, options);
        shown.push({ title, body: options.body });
      }
    };
  });
}

/** One user's page of the web client, with the steps a user takes. */
export class AppPage {
  private constructor(public page: Page, readonly origin: string, readonly log: string[]) {}

  /** Opens the client in a fresh browser context (its own storage: another person). */
  static async open(
    browser: Browser,
    origin: string,
    opts: { notifications?: boolean } = {},
  ): Promise<AppPage> {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    if (opts.notifications) await recordNotifications(page, origin);
    await page.setViewport({ width: 1000, height: 700 });
    const log: string[] = [];
    page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => log.push(`pageerror: ${(e as Error).message}`));
    await page.goto(origin, { waitUntil: "load" });
    return new AppPage(page, origin, log);
  }

  /**
   * Closes the page and opens the client again in the same browser context (same storage), as
   * a user who closed the tab and comes back; resolves once the page has started loading.
   */
  async reopen(): Promise<void> {
    const context = this.page.browserContext();
    if (!this.page.isClosed()) await this.page.close();
    const page = await context.newPage();
    await page.setViewport({ width: 1000, height: 700 });
    page.on("console", (m) => this.log.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => this.log.push(`pageerror: ${(e as Error).message}`));
    this.page = page;
    await page.goto(this.origin, { waitUntil: "load" });
  }

  /** Another tab of the same browser (same context: same storage, same Web Locks). */
  async secondTab(): Promise<AppPage> {
    const page = await this.page.browserContext().newPage();
    await page.setViewport({ width: 1000, height: 700 });
    const log: string[] = [];
    page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => log.push(`pageerror: ${(e as Error).message}`));
    await page.goto(this.origin, { waitUntil: "load" });
    return new AppPage(page, this.origin, log);
  }

  /** Waits for the "not connected here" banner and returns its text and button. */
  async away(): Promise<{ text: string; button: string; composer: boolean }> {
    await this.page.waitForSelector("#away:not([hidden])", { timeout: 15_000 });
    return await this.page.evaluate(() => ({
      text: document.getElementById("away-text").textContent,
      button: document.getElementById("away-button").textContent,
      composer: !document.getElementById("composer-text").disabled,
    }));
  }

  /** Accepts the server key on first contact; returns the fingerprint the page showed. */
  async trustKey(): Promise<string> {
    await this.page.waitForSelector("#key-dialog[open]", { timeout: 10_000 });
    const shown = await this.page.$eval("#key-fingerprint", (e) => e.textContent ?? "");
    await this.page.click("#key-accept");
    return shown;
  }

  /** Creates the account (password `password-NAME`) and waits for the chat. */
  async register(name: string, firstContact = true): Promise<string> {
    await this.page.waitForSelector("#login-view:not([hidden])");
    await this.page.type("#login-user", name);
    await this.page.type("#login-password", `password-${name}`);
    await this.page.click("#register-button");
    const print = firstContact ? await this.trustKey() : "";
    await this.waitForChat();
    return print;
  }

  async waitForChat(): Promise<void> {
    await this.page.waitForSelector("#chat-view:not([hidden])", { timeout: 15_000 });
    await this.page.waitForFunction(() => document.body.dataset.link === "online");
  }

  /** Logs out through the dialog ("here": this browser; "everywhere": every device). */
  async logout(where: "here" | "everywhere"): Promise<void> {
    await this.page.click("#logout-button");
    await this.page.waitForSelector("#logout-dialog[open]");
    await this.page.click(`#logout-${where}`);
    await this.page.waitForSelector("#login-view:not([hidden])");
  }

  /** Opens a conversation through the Ctrl+K switcher: "world", a name or "#ID". */
  async open(what: string): Promise<void> {
    await this.page.keyboard.down("Control");
    await this.page.keyboard.press("k");
    await this.page.keyboard.up("Control");
    await this.page.waitForSelector("#switch-dialog[open]");
    await this.page.type("#switch-input", what);
    await this.page.keyboard.press("Enter");
    await this.page.waitForFunction(
      (w) =>
        !document.querySelector("#switch-dialog[open]") &&
        (document.getElementById("conversation-title")?.textContent ?? "").includes(
          w === "world" ? "world" : w,
        ),
      { timeout: 10_000 },
      what,
    );
  }

  /** Types a message and presses Enter. */
  async send(text: string): Promise<void> {
    await this.page.focus("#composer-text");
    await this.page.type("#composer-text", text);
    await this.page.keyboard.press("Enter");
  }

  /** Waits until the open conversation shows a message containing `text`. */
  async waitForMessage(text: string, timeout = 15_000): Promise<void> {
    await this.page.waitForFunction(
      (t) =>
        [...document.querySelectorAll("#messages li")].some((li) => li.textContent?.includes(t)),
      { timeout },
      text,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}: no message with "${text}"\n${this.log.join("\n")}`);
    });
  }

  /** The notifications the page showed (see recordNotifications). */
  notifications(): Promise<{ title: string; body: string }[]> {
    // deno-lint-ignore no-explicit-any
    return this.page.evaluate(() => (globalThis as any).shown ?? []);
  }

  /** How many messages of the open conversation contain `text`. */
  count(text: string): Promise<number> {
    return this.page.evaluate(
      (t) =>
        [...document.querySelectorAll("#messages li")].filter((li) => li.textContent?.includes(t))
          .length,
      text,
    );
  }

  /**
   * How many entries of `user`'s stored history (IndexedDB, as history_store.ts keeps it) contain
   * `text`: what the page shows could hide a stored double, this cannot.
   */
  stored(user: string, text: string): Promise<number> {
    return this.page.evaluate(
      async (name, t) => {
        const db = await new Promise<{ transaction(s: string): unknown; close(): void }>(
          (resolve, reject) => {
            const open = indexedDB.open(`parley-history-${name}`);
            open.onsuccess = () => resolve(open.result);
            open.onerror = () => reject(open.error);
          },
        );
        // deno-lint-ignore no-explicit-any
        const tx = db.transaction("messages") as any;
        const all = await new Promise<{ text: string }[]>((resolve, reject) => {
          const get = tx.objectStore("messages").getAll();
          get.onsuccess = () => resolve(get.result);
          get.onerror = () => reject(get.error);
        });
        db.close();
        return all.filter((e) => e.text.includes(t)).length;
      },
      user,
      text,
    );
  }

  /** The unread count shown for a conversation in the recent list (0 without a badge). */
  unread(key: string): Promise<number> {
    return this.page.evaluate((k) => {
      const badge = document.querySelector(`#recent-list [data-key="${k}"] .badge`);
      return badge ? Number(badge.textContent) : 0;
    }, key);
  }

  async uploadTo(input: string, path: string): Promise<void> {
    const handle = await this.page.$(input);
    if (!handle) throw new Error(`No ${input}`);
    await (handle as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(path);
  }
}
