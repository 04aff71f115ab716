/**
 * The web client end to end in real Chromium: two browser users and a terminal user chat in the
 * world room, in private and in a group; an image is shown (decoded in the page); a file
 * arrives with the right SHA-256; an oversize image gets a clear error in the page.
 *
 * PARLEY_SCREENSHOT=1 also rewrites docs/web-client.png from this run (README shows it); a plain
 * run leaves the file alone, so that CI never dirties the tree with a PNG that differs by a pixel.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ROOT } from "../helpers/cli.ts";
import { browserTest } from "./browser.ts";
import { AppPage, withWebWorld } from "./web_world.ts";

browserTest(
  "two browser users and a terminal user chat in the world, in private and in a group",
  (browser) =>
    withWebWorld(browser, async (w) => {
      const alice = await AppPage.open(w.browser, w.server.origin, { notifications: true });
      const shown = await alice.register("alice");
      assert.equal(shown, w.server.fingerprint, "first contact shows the server's fingerprint");
      const bob = await AppPage.open(w.browser, w.server.origin);
      await bob.page.waitForSelector("#login-view:not([hidden])");
      assert.equal(
        await bob.page.$eval("#notify-button", (b) => b.hidden),
        true,
        "no notification button before logging in",
      );
      await bob.register("bob");
      // Logged in, on a phone: the header is one row, with the notification button in it.
      await bob.page.setViewport({ width: 390, height: 844 });
      const header = await bob.page.evaluate(() => {
        const bar = document.querySelector("header.bar");
        const tops = [...bar.children].filter((c: { hidden: boolean }) => !c.hidden)
          .map((c: { getBoundingClientRect(): { top: number; bottom: number } }) => {
            const r = c.getBoundingClientRect();
            return Math.round((r.top + r.bottom) / 2);
          });
        return {
          rows: new Set(tops).size,
          wide: bar.scrollWidth <= bar.clientWidth,
          notify: !document.getElementById("notify-button").hidden,
        };
      });
      assert.deepEqual(header, { rows: 1, wide: true, notify: true }, "the header at 390px");
      // The switcher's placeholder fits its field; error lines line up with the messages.
      await bob.page.keyboard.down("Control");
      await bob.page.keyboard.press("k");
      await bob.page.keyboard.up("Control");
      await bob.page.waitForSelector("#switch-dialog[open]");
      const fit = await bob.page.$eval("#switch-input", (input) => {
        const style = getComputedStyle(input);
        // deno-lint-ignore no-explicit-any
        const ctx = new (globalThis as any).OffscreenCanvas(1, 1).getContext("2d");
        ctx.font = style.font;
        const room = input.clientWidth - parseFloat(style.paddingLeft) -
          parseFloat(style.paddingRight);
        return ctx.measureText(input.placeholder).width <= room;
      });
      assert.ok(fit, "the switcher's placeholder is not cut off");
      await bob.page.keyboard.press("Escape");
      const [errorLeft, messagesLeft] = await bob.page.evaluate(() =>
        ["chat-error", "messages"].map((id) => {
          const e = document.getElementById(id);
          return e.getBoundingClientRect().left + parseFloat(getComputedStyle(e).paddingLeft);
        })
      );
      assert.equal(errorLeft, messagesLeft, "error lines start where messages do");
      await bob.page.setViewport({ width: 1000, height: 700 });
      const carol = await w.terminal("carol");

      // The world room: everyone online.
      await alice.open("world");
      await bob.open("world");
      await carol.type("/world");
      await alice.send("hello world from alice");
      await bob.waitForMessage("hello world from alice");
      await carol.out.waitFor(/<alice> hello world from alice/);
      await carol.type("the terminal says hi");
      await alice.waitForMessage("the terminal says hi");
      await bob.waitForMessage("the terminal says hi");

      // Private: from a browser and from the terminal; unread until opened.
      await bob.open("alice");
      await bob.send("psst alice, from bob");
      await carol.type("/to alice", "hi alice, from the terminal");
      await alice.page.waitForFunction(() =>
        document.querySelector('#recent-list [data-key="@bob"] .badge')?.textContent === "1" &&
        document.querySelector('#recent-list [data-key="@carol"] .badge')?.textContent === "1"
      );
      // Alice's page was not in front: she was told, once for each message.
      const notes = await alice.notifications();
      notes.sort((a, b) => a.title.localeCompare(b.title));
      assert.deepEqual(notes, [
        { title: "bob in @bob", body: "psst alice, from bob" },
        { title: "carol in @carol", body: "hi alice, from the terminal" },
      ]);
      await alice.page.click('#recent-list [data-key="@bob"]');
      await alice.waitForMessage("psst alice, from bob");
      assert.equal(await alice.unread("@bob"), 0, "opened: read");
      await alice.send("hi bob, shift+enter\nmakes a second line");
      await bob.waitForMessage("makes a second line");
      await alice.open("carol");
      await alice.waitForMessage("hi alice, from the terminal");
      await alice.send("hello carol, from the browser");
      await carol.out.waitFor(/<alice> hello carol, from the browser/);

      // Friends: alice asks, bob accepts in his page; presence shows.
      await alice.page.type("#add-friend-name", "bob");
      await alice.page.keyboard.press("Enter");
      await bob.page.waitForSelector('#request-list [data-request="alice"] button');
      await bob.page.click('#request-list [data-request="alice"] button');
      await alice.page.waitForSelector('#friend-list [data-friend="bob"][data-online="true"]');

      // A group: bob (a friend) is added, carol (not a friend) invited and joins from the terminal.
      await alice.page.type("#create-group-name", "team");
      await alice.page.keyboard.press("Enter");
      await alice.page.waitForFunction(() =>
        document.getElementById("conversation-title")?.textContent?.includes("team")
      );
      const group = await alice.page.$eval(
        "#conversation-title",
        (e) => e.textContent!.split(" ")[0],
      );
      for (const name of ["bob", "carol"]) {
        await alice.page.click("#invite-button");
        await alice.page.waitForSelector("#prompt-dialog[open]");
        await alice.page.type("#prompt-input", name);
        await alice.page.keyboard.press("Enter");
      }
      await carol.out.waitFor(new RegExp(`alice invites you to ${group} team`));
      await carol.type(`/join ${group}`, `/to ${group}`);
      await carol.out.waitFor(/team/);
      await alice.send("welcome to the team");
      await carol.out.waitFor(/<alice> welcome to the team/);
      await bob.open(group);
      await bob.waitForMessage("welcome to the team");
      await carol.type("glad to be here");
      await alice.waitForMessage("glad to be here");
      await bob.waitForMessage("glad to be here");
      await alice.page.click("#members-button");
      await alice.page.waitForSelector("#prompt-dialog[open]");
      const members = await alice.page.$eval("#prompt-body", (e) => e.textContent);
      assert.match(members!, /alice/);
      assert.match(members!, /bob/);
      assert.match(members!, /carol/);
      await alice.page.keyboard.press("Escape");
      await alice.page.waitForSelector("#prompt-dialog:not([open])");

      // An invitation from a stranger, accepted in the page; then bob leaves the group.
      await carol.type("/create games bob");
      const games = (await carol.out.waitFor(/Created (#\d+) games/))[1];
      await bob.page.waitForSelector(`#request-list [data-invitation="${games.slice(1)}"] button`);
      await bob.page.click(`#request-list [data-invitation="${games.slice(1)}"] button`);
      await bob.page.waitForFunction(
        (g: string) => document.getElementById("conversation-title")?.textContent === `${g} games`,
        {},
        games,
      );
      await carol.out.waitFor(/bob/);
      await carol.type("anyone for chess?");
      await bob.waitForMessage("anyone for chess?");
      await bob.page.click("#leave-button");
      await carol.out.waitFor(new RegExp(`bob left ${games} games`));
      // Left: out of bob's groups, and back in the world room.
      await bob.page.waitForFunction(
        (g: string) =>
          !document.querySelector(`#group-list [data-key="${g}"]`) &&
          document.getElementById("conversation-title")?.textContent === "world",
        {},
        games,
      );

      // An image, decoded in bob's page.
      const png = await alice.page.evaluate(async () => {
        const canvas = new OffscreenCanvas(160, 96);
        // deno-lint-ignore no-explicit-any
        const ctx = canvas.getContext("2d") as any;
        const sky = ctx.createLinearGradient(0, 0, 160, 96);
        sky.addColorStop(0, "#4a90d9");
        sky.addColorStop(1, "#f5c26b");
        ctx.fillStyle = sky;
        ctx.fillRect(0, 0, 160, 96);
        ctx.fillStyle = "#fff";
        ctx.beginPath();
        ctx.arc(118, 34, 16, 0, 2 * Math.PI);
        ctx.fill();
        const blob = await canvas.convertToBlob({ type: "image/png" });
        return new Uint8Array(await blob.arrayBuffer()).toBase64();
      });
      await Deno.writeFile(join(w.dir, "sunset.png"), Uint8Array.fromBase64(png));
      await alice.open("bob");
      await alice.uploadTo("#image-input", join(w.dir, "sunset.png"));
      await bob.open("alice");
      await bob.page.waitForSelector("#messages img");
      const size = await bob.page.$eval("#messages img", async (img) => {
        const image = img as unknown as {
          decode(): Promise<void>;
          naturalWidth: number;
          naturalHeight: number;
        };
        await image.decode();
        return [image.naturalWidth, image.naturalHeight];
      });
      assert.deepEqual(size, [160, 96]);
      assert.ok(await bob.page.$('#messages a[download="sunset.png"]'), "the image can be saved");

      // An oversize image: refused in the page, before anything is sent.
      const big = new Uint8Array(2 * 1024 * 1024 + 1);
      big.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      await Deno.writeFile(join(w.dir, "huge.png"), big);
      await alice.uploadTo("#image-input", join(w.dir, "huge.png"));
      await alice.page.waitForFunction(() =>
        /Not sent: images are limited to 2\.0 MiB on this server; "huge\.png" has 2\.0 MiB/.test(
          document.getElementById("chat-error")?.textContent ?? "",
        )
      );

      // A text over the server's limit: refused in the page, and kept in the box to be shortened
      // (a pasted page of text must not vanish).
      const long = "x".repeat(20_000);
      await alice.page.$eval("#composer-text", (box, t) => box.value = t, long);
      await alice.page.focus("#composer-text");
      await alice.page.keyboard.press("Enter");
      await alice.page.waitForFunction(() =>
        /Not sent: Text messages are limited to \d+ bytes on this server; this one has 20000/
          .test(document.getElementById("chat-error")?.textContent ?? "")
      );
      assert.equal(await alice.page.$eval("#composer-text", (box) => box.value.length), 20_000);
      await alice.page.$eval("#composer-text", (box) => box.value = "");

      // A file: offered by alice, accepted by bob, checked by SHA-256 in his page.
      const file = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
      await Deno.writeFile(join(w.dir, "report.pdf"), file);
      const sha = createHash("sha256").update(file).digest("hex");
      await alice.uploadTo("#file-input", join(w.dir, "report.pdf"));
      await bob.page.waitForSelector('#transfers [data-action="accept"]');
      await bob.page.click('#transfers [data-action="accept"]');
      await bob.page.waitForSelector("#transfers li[data-done]");
      const got = await bob.page.$eval("#transfers li[data-done]", (li) => ({
        done: li.getAttribute("data-done"),
        sha: li.querySelector("a")?.getAttribute("data-sha256"),
        text: li.textContent,
      }));
      assert.deepEqual([got.done, got.sha], ["ok", sha], got.text ?? "");
      await alice.page.waitForSelector('#transfers li[data-done="ok"]');

      // A file dropped on the message box is offered too; bob denies it, and alice is told.
      await alice.page.evaluate(() => {
        // deno-lint-ignore no-explicit-any
        const g = globalThis as any;
        const drop = new g.DataTransfer();
        drop.items.add(new g.File(["not for you"], "secret.txt", { type: "text/plain" }));
        document.getElementById("composer").dispatchEvent(
          new g.DragEvent("drop", { dataTransfer: drop, bubbles: true, cancelable: true }),
        );
      });
      await bob.page.waitForSelector('#transfers li:not([data-done]) [data-action="deny"]');
      await bob.page.click('#transfers li:not([data-done]) [data-action="deny"]');
      await alice.page.waitForFunction(() =>
        [...document.querySelectorAll('#transfers li[data-done="failed"]')].some((
          li: { textContent: string },
        ) => li.textContent.includes("secret.txt") && li.textContent.includes("bob declined"))
      );

      if (Deno.env.get("PARLEY_SCREENSHOT") === "1") {
        await bob.page.screenshot({ path: join(ROOT, "docs", "web-client.png") });
      }

      // A long text (within the limit) scrolls in the message list; the page itself does not
      // scroll, so the header and the message box stay in sight, on a wide and a phone screen.
      await alice.page.$eval("#composer-text", (box) => box.value = "a long line ".repeat(1200));
      await alice.page.focus("#composer-text");
      await alice.page.keyboard.press("Enter");
      await alice.waitForMessage("a long line a long line");
      for (const viewport of [{ width: 1100, height: 700 }, { width: 390, height: 844 }]) {
        await alice.page.setViewport(viewport);
        const [page, window] = await alice.page.evaluate(() => [
          document.scrollingElement.scrollHeight,
          // deno-lint-ignore no-explicit-any
          (globalThis as any).innerHeight,
        ]);
        assert.ok(
          page <= window,
          `${viewport.width}px: the page is ${page}px, the window ${window}px`,
        );
      }
      await alice.page.setViewport({ width: 1000, height: 700 });

      // Bob blocks alice from their conversation: her next message is refused, with the reason;
      // once he unblocks her (from the Blocked list), it goes through.
      await bob.page.click("#block-button");
      await bob.page.waitForSelector('#blocked-list [data-blocked="alice"] button');
      await alice.send("are you there?");
      await alice.page.waitForFunction(() =>
        (document.getElementById("chat-error")?.textContent ?? "").includes(
          "Not sent to @bob: bob has blocked you",
        )
      );
      // The refused message stays in alice's conversation, marked as not sent.
      assert.match(
        await alice.page.$eval("#messages li.failed", (e) => e.textContent ?? ""),
        /are you there\?.*not sent: bob has blocked you/,
      );
      await bob.page.click('#blocked-list [data-blocked="alice"] button');
      await bob.page.waitForSelector('#blocked-list [data-blocked="alice"]', { hidden: true });
      await alice.send("and now?");
      await bob.waitForMessage("and now?");
      // The old "Not sent" line goes once a later message went through.
      await alice.page.waitForFunction(() =>
        document.getElementById("chat-error")?.textContent === ""
      );
      assert.equal(await bob.count("are you there?"), 0, "nothing got through the block");
      // Nothing failed in the pages, and the strict CSP refused nothing the app does.
      for (const page of [alice, bob]) {
        assert.deepEqual(
          page.log.filter((l) => /^pageerror|^error|Content Security Policy/.test(l)),
          [],
        );
      }
    }),
);
