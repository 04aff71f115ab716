/**
 * The web client on a cluster, in real Chromium: the page of node A learns node B's WebSocket
 * from A's `web.alternates`, and when A goes away it resumes its session at B (which lists A's
 * origin in `web.origins`, and starts on a copy of A's data dir: the same key and the same
 * store, as the nodes of a cluster have), under the pin of A's origin.
 */

import { copyDir } from "../helpers/files.ts";
import { freePort } from "../../scripts/free_port.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatProcess, fastConfig, run } from "../helpers/cli.ts";
import { browserTest } from "./browser.ts";
import { AppPage, WebServerProcess } from "./web_world.ts";

browserTest(
  "the web client resumes at an alternate node when its origin's server goes away",
  async (browser) => {
    const dir = await Deno.makeTempDir({ prefix: "parley-web-failover-" });
    const [dirA, dirB] = [join(dir, "a"), join(dir, "b")];
    await Deno.mkdir(dirA);
    await Deno.mkdir(dirB);
    const [aWeb, bWeb] = [freePort(), freePort()];
    const bSocket = `ws://127.0.0.1:${bWeb}/ws`;
    await fastConfig(dirA, { web: { alternates: [bSocket] } });
    await fastConfig(dirB, { web: { origins: [`http://127.0.0.1:${aWeb}`] } });
    const env = (user: string) => ({
      PARLEY_CONFIG_DIR: join(dir, user, "config"),
      PARLEY_ACCEPT_NEW_KEY: "1",
      PARLEY_DATA_DIR: join(dir, user, "data"),
      PARLEY_PASSWORD: `password-${user}`,
    });
    const servers: WebServerProcess[] = [];
    let bob: ChatProcess | null = null;
    try {
      const a = await WebServerProcess.start(dirA, { chat: 0, web: aWeb });
      servers.push(a);
      const registered = await run(["connect", a.addr, "--user", "bob", "--register"], {
        env: env("bob"),
        input: "",
      });
      assert.equal(registered.code, 0, registered.stderr);
      const alice = await AppPage.open(browser, a.origin);
      await alice.register("alice");
      // Every line the status shows, kept (the next one replaces it on screen).
      await alice.page.evaluate(() => {
        const seen: string[] = [];
        Object.assign(globalThis, { statuses: seen });
        const line = document.getElementById("status");
        // deno-lint-ignore no-explicit-any
        new (globalThis as any).MutationObserver(() => seen.push(line.textContent))
          .observe(line, { childList: true, characterData: true, subtree: true });
      });

      await a.stop();
      await alice.page.waitForFunction(() => document.body.dataset.link === "down");
      await copyDir(join(dirA, "data"), join(dirB, "data"));
      servers.push(await WebServerProcess.start(dirB, { chat: 0, web: bWeb }));
      const b = servers[1];
      await alice.page.waitForFunction(
        // deno-lint-ignore no-explicit-any
        (port) => (globalThis as any).statuses.includes(`Reconnected to 127.0.0.1:${port}.`),
        { timeout: 30_000 },
        bWeb,
      ).catch(async (e) => {
        const seen = await alice.page.evaluate(() =>
          // deno-lint-ignore no-explicit-any
          ((globalThis as any).statuses as string[]).join(" | ")
        );
        throw new Error(`${(e as Error).message}: ${seen}\n${alice.log.join("\n")}`);
      });
      await alice.page.waitForFunction(() => document.body.dataset.link === "online");
      // Still the same session, not a new login: no login form came back.
      assert.equal(await alice.page.$eval("#login-view", (e) => e.hidden), true);

      bob = ChatProcess.start(["connect", b.addr, "--user", "bob"], env("bob"));
      await bob.out.waitFor(/Logged in as bob /);
      await bob.type("/to alice");
      await alice.open("bob");
      await alice.send("from the page, through node b");
      await bob.out.waitFor(/<alice> from the page, through node b/);
    } finally {
      await bob?.kill();
      for (const s of servers) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
