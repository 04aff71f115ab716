/**
 * Real headless Chromium for the web tests: Debian's `chromium` at /usr/bin/chromium, driven
 * through the DevTools protocol by puppeteer-core (which downloads no browser). Outside CI a
 * machine without Chromium skips these tests and says why; in CI (CI=true, where .ci/run
 * installs it) a missing browser is a failure.
 */

import puppeteer, { type Browser, type Page } from "puppeteer-core";

export type { Browser, Page };

declare global {
  // Page-side code (page.evaluate and friends) runs in Chromium, but is type-checked with Deno's
  // types, which have no DOM: these names are given loosely, for that code only.
  // deno-lint-ignore no-explicit-any
  var document: any;
  // deno-lint-ignore no-explicit-any
  var indexedDB: any;
  // deno-lint-ignore no-explicit-any
  var getComputedStyle: any;
}

export const CHROMIUM = "/usr/bin/chromium";

function chromiumPresent(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const inCi = Deno.env.get("CI") === "true";
const present = chromiumPresent();
if (!present && !inCi) {
  console.warn(`Skipping the browser tests: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}

/** A Deno.test in a real browser; `fn` gets a fresh browser, closed afterwards. */
export function browserTest(name: string, fn: (browser: Browser) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !present && !inCi,
    // puppeteer keeps its own sockets and timers alive between calls.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      if (!present) throw new Error(`CI=true but there is no Chromium at ${CHROMIUM}`);
      const browser = await launch();
      try {
        await fn(browser);
      } finally {
        await browser.close();
      }
    },
  });
}

export function launch(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for the sandbox.
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check"],
  });
}

/**
 * A page that fails the test on an uncaught page error or a CSP violation, and keeps the
 * console for the failure message.
 */
export async function openPage(browser: Browser, url: string): Promise<Page & { log: string[] }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage() as Page & { log: string[] };
  page.log = [];
  page.on("console", (m) => page.log.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => page.log.push(`pageerror: ${(e as Error).message}`));
  await page.goto(url, { waitUntil: "load" });
  return page;
}
