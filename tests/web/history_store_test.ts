/**
 * The web app's history store in real Chromium: what it commits survives a reload (messages in
 * order, unread counts, also when a read mark and a message meet, images, the keys that recognise
 * a redelivery), per account.
 */

import assert from "node:assert/strict";
import { browserTest, openPage } from "./browser.ts";
import { bundleExports, serveFiles } from "./static_server.ts";

const STORE = new URL("../../src/webapp/history_store.ts", import.meta.url).href;
const PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="store.js"></script>';

browserTest(
  "HistoryStore keeps messages, unread counts, images and seen ids across a reload",
  async (browser) => {
    const server = serveFiles({
      "index.html": PAGE,
      "store.js": await bundleExports({ HistoryStore: STORE }),
    });
    try {
      const page = await openPage(browser, server.url);
      await page.waitForFunction(() => "HistoryStore" in globalThis);
      await page.evaluate(async () => {
        // deno-lint-ignore no-explicit-any
        const H = (globalThis as any).HistoryStore;
        const h = await H.open("Alice");
        const at = (s: number) => new Date(Date.UTC(2026, 11, 6, 0, 0, s)).toISOString();
        const id = (n: number) => n.toString(16).padStart(32, "0");
        await h.append("@bob", "@bob", {
          id: id(1),
          from: "bob",
          time: at(1),
          kind: "text",
          text: "one",
        }, true);
        await h.append("@bob", "@bob", {
          id: id(2),
          from: "Alice",
          time: at(2),
          kind: "text",
          text: "two",
        }, false);
        await h.append("@bob", "@bob", {
          id: id(3),
          from: "bob",
          time: at(3),
          kind: "text",
          text: "three",
        }, true);
        await h.append("*world", "world", {
          id: id(4),
          from: "carol",
          time: at(4),
          kind: "image",
          text: "dot.png (3 bytes)",
          image: new Uint8Array([1, 2, 3]),
          name: "dot.png",
        }, true);
        await h.markRead("*world");
        // Opened as a message arrives: the read mark and the new message both count, in order.
        await Promise.all([
          h.markRead("@bob"),
          h.append("@bob", "@bob", {
            id: id(7),
            from: "bob",
            time: at(7),
            kind: "text",
            text: "four",
          }, true),
        ]);
        h.close();
        const other = await H.open("bob");
        await other.append("@alice", "@alice", {
          id: id(9),
          from: "bob",
          time: at(9),
          kind: "text",
          text: "mine",
        }, false);
        other.close();
      });
      await page.reload({ waitUntil: "load" });
      await page.waitForFunction(() => "HistoryStore" in globalThis);
      const seen = await page.evaluate(async () => {
        // deno-lint-ignore no-explicit-any
        const H = (globalThis as any).HistoryStore;
        const h = await H.open("alice");
        const id = (n: number) => Uint8Array.fromHex(n.toString(16).padStart(32, "0"));
        const world = await h.last("*world", 10);
        return {
          recent: h.recent().map((c: { key: string; unread: number }) => `${c.key}:${c.unread}`),
          lastTwo: (await h.last("@bob", 2)).map((e: { text: string }) => e.text),
          all: (await h.last("@bob", 100)).length,
          image: [...world[0].image],
          name: world[0].name,
          // A stored message is known (a redelivery is dropped); an unknown one is not.
          stored: [h.has("BOB", id(3)), h.has("alice", id(2)), h.has("bob", id(6))],
          redelivery: h.seen.first("BOB", id(3)),
          mineAgain: h.seen.first("alice", id(2)),
          fresh: h.seen.first("bob", id(5)),
          otherAccount: (await h.last("@alice", 10)).length,
        };
      });
      assert.deepEqual(seen, {
        recent: ["@bob:1", "*world:0"],
        lastTwo: ["three", "four"],
        all: 4,
        image: [1, 2, 3],
        name: "dot.png",
        stored: [true, true, false],
        redelivery: false,
        mineAgain: false,
        fresh: true,
        otherAccount: 0,
      }, page.log.join("\n"));
    } finally {
      await server.close();
    }
  },
);
