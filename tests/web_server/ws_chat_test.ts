/** The whole chat over the web port's WebSocket, with the client library that speaks TCP. */

import assert from "node:assert/strict";
import { MsgType } from "../../src/protocol/messages.ts";
import { body, passes } from "../helpers/content.ts";
import { metric, webUser, WITH_METRICS, withWebServer } from "./web_helpers.ts";

Deno.test("a WebSocket user registers, logs in and chats with a TCP user, both ways", () =>
  withWebServer(async (t, web) => {
    const browser = await webUser(t, web, "wendy");
    const terminal = await t.user("tom");
    await browser.sendText({ user: "tom" }, "hello from the browser");
    assert.equal((await passes(terminal, 1))[0].data, "hello from the browser");
    await terminal.sendText({ user: "wendy" }, "hello from the terminal");
    assert.equal((await passes(browser, 1))[0].data, "hello from the terminal");
    // A large message crosses the socket in several WebSocket messages and frames.
    const big = "x".repeat(16_000);
    await terminal.sendText({ world: true }, big);
    const pass = body(await browser.nextEvent(MsgType.PASS));
    assert.equal(pass.data, big);
    // It went over the web port: one upgrade, and both connections count.
    assert.equal(await metric(t, "parley_web_upgrades_total"), 1);
    assert.equal(await metric(t, "parley_connections"), 2);
  }, WITH_METRICS));

Deno.test("a restarted test server keeps its web port, so a browser's page reconnects to the same origin", () =>
  withWebServer(async (t, web) => {
    await t.restart();
    assert.equal(t.server.web, web.href);
    const wendy = await webUser(t, web, "wendy");
    assert.ok(await wendy.ping() >= 0);
  }));
