/** Listeners: a taken port is refused in a sentence, and a refused HTTP port lets the chat port go. */

import assert from "node:assert/strict";
import { Listeners } from "../../src/server/listeners.ts";

const OFF = { enabled: false, host: "127.0.0.1", port: 0 };

Deno.test("Listeners.open() refuses a taken chat port, naming the address and what it is for", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    Listeners.open({ host: "127.0.0.1", port: port, http: OFF });
    assert.fail("the taken port was bound");
  } catch (e) {
    assert.ok(e instanceof Deno.errors.AddrInUse);
    assert.equal(
      e.message,
      `Cannot listen on 127.0.0.1:${port} (chat): another process is using it`,
    );
  } finally {
    taken.close();
  }
});

Deno.test("Listeners.open() with a taken HTTP port lets the chat port go again", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const httpPort = (taken.addr as Deno.NetAddr).port;
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const chatPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  try {
    assert.throws(
      () =>
        Listeners.open({
          host: "127.0.0.1",
          port: chatPort,
          http: { enabled: true, host: "127.0.0.1", port: httpPort },
        }),
      /\(HTTP\): another process is using it/,
    );
  } finally {
    taken.close();
  }
  // Bindable again: the chat listener opened first was closed.
  Deno.listen({ hostname: "127.0.0.1", port: chatPort }).close();
});

Deno.test("Listeners: both ports bound when HTTP is enabled, and close() lets both go", () => {
  const l = Listeners.open({
    host: "127.0.0.1",
    port: 0,
    http: { enabled: true, host: "127.0.0.1", port: 0 },
  });
  assert.ok(l.http, "an HTTP listener");
  const chat = l.chatAddr.port;
  const http = (l.http.addr as Deno.NetAddr).port;
  l.close();
  l.close(); // a second close is quiet
  Deno.listen({ hostname: "127.0.0.1", port: chat }).close();
  Deno.listen({ hostname: "127.0.0.1", port: http }).close();
});
