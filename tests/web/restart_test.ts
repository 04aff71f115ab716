/**
 * The web client's memory and resilience in real Chromium: a reload logs back in without the
 * password and shows the history from IndexedDB (timed: opening the page to the first message
 * shown); messages sent while the page was closed arrive when it is opened again; a server
 * crash and restart is survived with nothing lost or doubled, what was typed meanwhile sent
 * once; a key refused on first contact sends nothing and can be tried again; a server with another key at the same
 * address is refused, loudly.
 */

import assert from "node:assert/strict";
import { browserTest } from "./browser.ts";
import { AppPage, withWebWorld } from "./web_world.ts";

browserTest(
  "reload, closed page, server restart and a changed key in the web client",
  (browser) =>
    withWebWorld(browser, async (w) => {
      // A key refused on first contact: the page says so and sends nothing (the name stays free).
      const wary = await AppPage.open(w.browser, w.server.origin);
      await wary.page.type("#login-user", "alice");
      await wary.page.type("#login-password", "password-alice");
      await wary.page.click("#register-button");
      await wary.page.waitForSelector("#key-dialog[open]");
      await wary.page.click("#key-refuse");
      // The user's own choice: said plainly (not the interception banner), with "Try again",
      // which asks again; Esc refuses the same way.
      await wary.page.waitForSelector("#login-retry:not([hidden])");
      assert.match(
        await wary.page.$eval("#login-error", (e) => e.textContent ?? ""),
        /^You chose not to trust this server's key, so nothing was sent\./,
      );
      assert.equal(await wary.page.$eval("#fatal", (e) => e.hidden), true);
      await wary.page.click("#login-retry");
      await wary.page.waitForSelector("#key-dialog[open]");
      await wary.page.keyboard.press("Escape");
      await wary.page.waitForSelector("#login-retry:not([hidden])");
      assert.equal(await wary.page.$eval("#fatal", (e) => e.hidden), true);
      await wary.page.close();

      const alice = await AppPage.open(w.browser, w.server.origin);
      await alice.register("alice");
      const bob = await AppPage.open(w.browser, w.server.origin);
      await bob.register("bob");
      await alice.open("world");
      await alice.send("world note from alice");
      await bob.open("alice");
      for (const text of ["one", "two", "three"]) await bob.send(`message ${text}`);
      await alice.page.waitForFunction(() =>
        document.querySelector('#recent-list [data-key="@bob"] .badge')?.textContent === "3"
      );

      // Half a message typed to bob: kept across the reload.
      await alice.open("bob");
      await alice.page.type("#composer-text", "half-typed draft");

      // A reload: no password, and the history is there (the most recent conversation opens).
      const started = performance.now();
      await alice.page.reload({ waitUntil: "domcontentloaded" });
      await alice.waitForMessage("message three");
      const firstShownMs = Math.round(performance.now() - started);
      console.log(`web client: first message shown ${firstShownMs} ms after opening the page`);
      await alice.page.waitForFunction(() =>
        document.getElementById("composer-text").value === "half-typed draft"
      );
      await alice.page.$eval("#composer-text", (box) => {
        box.value = "";
        // deno-lint-ignore no-explicit-any
        box.dispatchEvent(new (globalThis as any).Event("input"));
      });
      assert.equal(await alice.page.$eval("#login-view", (e) => e.hidden), true, "no login form");
      await alice.waitForChat();
      for (const text of ["one", "two", "three"]) {
        assert.equal(await alice.count(`message ${text}`), 1);
      }

      // A second tab of the same browser does not take the connection: it says where Parley is
      // open and offers "Use here", which moves the connection (and the offer) between the tabs.
      const tab2 = await alice.secondTab();
      assert.deepEqual(await tab2.away(), {
        text: "Parley is open in another tab.",
        button: "Use here",
        composer: false,
      });
      assert.equal(await alice.page.evaluate(() => document.body.dataset.link), "online");
      await tab2.page.click("#away-button");
      await tab2.waitForChat();
      assert.deepEqual(await alice.away(), {
        text: "Parley is open in another tab.",
        button: "Use here",
        composer: false,
      });
      // A tab behind another draws no frames, and puppeteer's click waits for one.
      await alice.page.bringToFront();
      await alice.page.click("#away-button");
      await alice.waitForChat();
      assert.equal((await tab2.away()).button, "Use here");
      await alice.page.waitForFunction(() => document.getElementById("away").hidden);
      await tab2.page.close();

      // Sent while alice's page was closed: shown when she comes back, with the summary.
      await alice.page.close();
      await bob.send("while you were away");
      const reopened = performance.now();
      await alice.reopen();
      await alice.waitForMessage("while you were away");
      await alice.waitForMessage("1 message arrived while you were away: @bob (1).");
      const backlogMs = Math.round(performance.now() - reopened);
      console.log(
        `web client: a message that waited on the server shown ${backlogMs} ms after opening the page`,
      );
      await alice.waitForChat();

      // Friends, so that presence shows (and is not claimed while alice's connection is down).
      await alice.page.type("#add-friend-name", "bob");
      await alice.page.keyboard.press("Enter");
      await bob.page.bringToFront();
      await bob.page.waitForSelector('#request-list [data-request="alice"] button');
      await bob.page.click('#request-list [data-request="alice"] button');
      await alice.page.bringToFront();
      await alice.page.waitForSelector('#friend-list [data-friend="bob"][data-online="true"]');

      // The server crashes; alice types meanwhile: her message shows at once, marked as being
      // sent; bob's presence is unknown; it comes back on the same ports and data.
      await w.crash();
      await alice.page.waitForFunction(() => document.body.dataset.link === "down");
      await alice.page.waitForSelector('#friend-list [data-friend="bob"][data-online="unknown"]');
      await alice.send("typed while the server was down");
      assert.match(
        await alice.page.$eval("#messages li.pending", (e) => e.textContent ?? ""),
        /typed while the server was down.*sending…/,
      );
      assert.equal(await alice.count("Offline"), 0, "no note about it left in the history");
      await w.start();
      await bob.waitForMessage("typed while the server was down", 30_000);
      await alice.page.waitForFunction(() => !document.querySelector("#messages li.pending"));
      assert.equal(await alice.count("typed while the server was down"), 1);
      await bob.send("after the restart");
      await alice.waitForMessage("after the restart", 30_000);

      // Nothing lost, nothing doubled, in the pages and after a reload from IndexedDB.
      for (const page of [alice, bob]) {
        await page.page.reload({ waitUntil: "domcontentloaded" });
        await page.waitForChat();
        await page.open(page === alice ? "bob" : "alice");
        await page.waitForMessage("after the restart");
        for (
          const text of [
            "message one",
            "message two",
            "message three",
            "while you were away",
            "typed while the server was down",
            "after the restart",
          ]
        ) {
          assert.equal(await page.count(text), 1, `"${text}" shown once`);
          assert.equal(
            await page.stored(page === alice ? "alice" : "bob", text),
            1,
            `"${text}" kept once`,
          );
        }
      }
      await alice.open("world");
      await alice.waitForMessage("world note from alice");
      assert.equal(
        await alice.count("world note from alice"),
        1,
        "the world backlog is not doubled",
      );
      assert.equal(await alice.stored("alice", "world note from alice"), 1, "nor kept twice");

      // A new password (asked in the page), then logging out forgets the session: the next page
      // asks for the password, and takes only the new one.
      await bob.page.click("#password-button");
      await bob.page.waitForSelector("#prompt-dialog[open]");
      await bob.page.type("#prompt-input", "password-bob");
      await bob.page.keyboard.press("Enter");
      await bob.page.waitForSelector("#prompt-dialog[open]");
      await bob.page.type("#prompt-input", "a new password for bob");
      await bob.page.keyboard.press("Enter");
      await bob.waitForMessage("Password changed.");
      await bob.logout("here");
      await bob.page.type("#login-password", "password-bob");
      await bob.page.keyboard.press("Enter");
      await bob.page.waitForFunction(() =>
        /password/i.test(document.getElementById("login-error")?.textContent ?? "") &&
        !/Logging in/.test(document.getElementById("login-error")?.textContent ?? "")
      );
      await bob.page.$eval("#login-password", (e) => e.value = "");
      await bob.page.type("#login-password", "a new password for bob");
      await bob.page.keyboard.press("Enter");
      await bob.waitForChat();

      // Bob logs in from another browser: this page is kicked, and says so plainly, with the
      // message box disabled and a way to connect again. He closes it (its token stays) and logs
      // out everywhere in the other browser: this browser's token ends too, so reopening the page
      // asks for the password instead of resuming.
      const bob2 = await AppPage.open(w.browser, w.server.origin);
      await bob2.page.waitForSelector("#login-view:not([hidden])");
      await bob2.page.type("#login-user", "bob");
      await bob2.page.type("#login-password", "a new password for bob");
      await bob2.page.keyboard.press("Enter");
      await bob2.trustKey();
      await bob2.waitForChat();
      const kicked = await bob.away();
      assert.match(kicked.text, /^Kicked: .*This tab is disconnected\.$/);
      assert.deepEqual([kicked.button, kicked.composer], ["Reconnect here", false]);
      await bob.page.close();
      await bob2.logout("everywhere");
      await bob.reopen();
      await bob.page.waitForSelector("#login-view:not([hidden])", { timeout: 15_000 });
      assert.equal(await bob.page.$eval("#login-user", (e) => e.value), "bob", "the name is kept");

      // Another key at the same address: refused, loudly, and nothing is sent.
      await w.crash();
      await w.start(true);
      const refused = async () => {
        await alice.page.waitForSelector("#fatal:not([hidden])", { timeout: 30_000 });
        assert.match(
          await alice.page.$eval("#fatal", (e) => e.textContent ?? ""),
          /^Connection refused: .*presented identity key .* pinned on first contact/,
        );
        assert.equal(await alice.page.$eval("#chat-view", (e) => e.hidden), true);
      };
      // Alice's open page meets it as it reconnects, and again when reloaded.
      await refused();
      await alice.page.reload({ waitUntil: "domcontentloaded" });
      await refused();
      // Bob's page, logged out, meets the new key as it tries to log in: refused the same way.
      await bob.page.type("#login-password", "password-bob");
      await bob.page.keyboard.press("Enter");
      await bob.page.waitForSelector("#fatal:not([hidden])", { timeout: 30_000 });
    }),
);
