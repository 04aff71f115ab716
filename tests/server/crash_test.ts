/**
 * Durability under a crash: senders stream messages while the server process is killed with
 * SIGKILL (or stopped with SIGTERM); after a restart, every message the server acknowledged
 * with SENT reaches its recipient, and the application sees each exactly once. Group messages
 * whose text is stored once for all their recipients (two offline, one online) go with them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ConnectionClosedError, newMessageId, ParleyClient } from "../../src/client/client.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import { SeenMessages } from "../../src/client/seen.ts";
import { ParleyError } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { fastConfig, ServerProcess } from "../helpers/cli.ts";

const SENDERS = 4;
/** How long the senders run before the server is stopped. */
const LOAD_MS = 600;

async function crashRun(signal: "SIGKILL" | "SIGTERM") {
  const dir = await Deno.makeTempDir({ prefix: "parley-crash-" });
  // The senders' groups are made of strangers: added at once, not invited.
  const config = await fastConfig(dir, { groups: { inviteNeedsConsent: false } });
  let server = await ServerProcess.start(join(dir, "data"), config);
  const opts = {
    host: "127.0.0.1",
    port: server.port,
    knownHosts: new KnownHosts(join(dir, "known_hosts")),
  };
  const clients: ParleyClient[] = [];
  try {
    const setup = await ParleyClient.connect(opts);
    for (
      const name of [
        "sink",
        "online",
        "sinka",
        "sinkb",
        ...Array.from({ length: SENDERS }, (_, i) => `sender${i}`),
      ]
    ) {
      await setup.register(name, `password-${name}`);
    }
    setup.close();

    // One recipient is offline (everything must wait in the store); the other is online and
    // receives part of the stream before the crash, with acknowledgements in flight.
    const seen = new SeenMessages();
    const delivered = new Map<string, number>(); // key → times the application saw it
    const collect = (c: ParleyClient, into = delivered) =>
      (async () => {
        for await (const m of c.events()) {
          if (m.type !== MsgType.PASS) continue;
          const b = m.body as { source_username: string; id: Uint8Array };
          const key = SeenMessages.key(b.source_username, b.id);
          into.set(key, (into.get(key) ?? 0) + 1);
        }
      })();
    // Each group member's own view: a group message must reach both.
    const groupDelivered = { sinka: new Map<string, number>(), sinkb: new Map<string, number>() };
    const groupAcknowledged = new Set<string>();
    const online = await ParleyClient.connect({ ...opts, seen });
    clients.push(online);
    await online.login("online", "password-online");
    const collecting = [collect(online)];

    const acknowledged = new Set<string>();
    let attempted = 0;
    let stop = false;
    const senders = await Promise.all(Array.from({ length: SENDERS }, async (_, i) => {
      const c = await ParleyClient.connect(opts);
      clients.push(c);
      await c.login(`sender${i}`, `password-sender${i}`);
      const group = await c.createGroup(`g${i}`, ["sinka", "sinkb", "online"]);
      return { c, group: group.group_id };
    }));
    const sending = senders.map(({ c, group }, i) =>
      (async () => {
        while (!stop) {
          const id = newMessageId();
          attempted++;
          try {
            // Several in flight per sender, so the crash lands between commits and replies.
            const batch = [0, 1, 2, 3].map((k) =>
              c.sendText(
                { user: k % 2 ? "online" : "sink" },
                `from ${i} #${attempted}.${k}`,
                k === 0 ? id : newMessageId(),
              )
            );
            // A text of over 1 KiB to three recipients: stored once, named by their rows (the
            // online one's row waits, and is never written if its ACK comes first).
            const shared = c.sendText({ group }, `from ${i} #${attempted} `.padEnd(1500, "-"));
            const [receipts, sent] = await Promise.all([Promise.all(batch), shared]);
            for (const receipt of receipts) {
              acknowledged.add(SeenMessages.key(`sender${i}`, receipt.id));
            }
            groupAcknowledged.add(SeenMessages.key(`sender${i}`, sent.id));
          } catch (e) {
            if (e instanceof ConnectionClosedError || e instanceof ParleyError) return;
            throw e;
          }
        }
      })()
    );
    await new Promise((r) => setTimeout(r, LOAD_MS));
    const status = await server.stop(signal);
    stop = true;
    await Promise.all(sending);
    if (signal === "SIGTERM") assert.equal(status.code, 0, "SIGTERM is a clean exit");
    else assert.equal(status.signal, "SIGKILL");
    assert.ok(
      acknowledged.size > 50,
      `only ${acknowledged.size} messages were acknowledged before the stop`,
    );

    server = await ServerProcess.start(join(dir, "data"), config, server.port);
    for (const name of ["sink", "online"]) {
      const back = await ParleyClient.connect({ ...opts, seen });
      clients.push(back);
      await back.login(name, `password-${name}`);
      collecting.push(collect(back));
    }
    for (const name of ["sinka", "sinkb"] as const) {
      const back = await ParleyClient.connect({ ...opts, seen: new SeenMessages() });
      clients.push(back);
      await back.login(name, `password-${name}`);
      collecting.push(collect(back, groupDelivered[name]));
    }
    const missing = () =>
      [...acknowledged, ...groupAcknowledged].some((k) => !delivered.has(k)) ||
      [...groupAcknowledged].some((k) =>
        !groupDelivered.sinka.has(k) || !groupDelivered.sinkb.has(k)
      );
    const deadline = Date.now() + 20_000;
    while (missing() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(groupAcknowledged.size > 10, `only ${groupAcknowledged.size} group messages`);
    for (const [name, got] of Object.entries(groupDelivered)) {
      const lostHere = [...groupAcknowledged].filter((k) => !got.has(k));
      assert.equal(
        lostHere.length,
        0,
        `${name} lost ${lostHere.length} acknowledged group messages`,
      );
      const twiceHere = [...got].filter(([, n]) => n > 1);
      assert.equal(twiceHere.length, 0, `${name} saw ${twiceHere.length} group messages twice`);
    }
    const lost = [...acknowledged].filter((k) => !delivered.has(k));
    assert.equal(
      lost.length,
      0,
      `${lost.length} of ${acknowledged.size} acknowledged messages were lost`,
    );
    const lostOnline = [...groupAcknowledged].filter((k) => !delivered.has(k));
    assert.equal(lostOnline.length, 0, `online lost ${lostOnline.length} group messages`);
    const twice = [...delivered].filter(([, n]) => n > 1);
    assert.equal(twice.length, 0, `${twice.length} messages reached the application twice`);
    if (Deno.env.get("PARLEY_TEST_REPORT")) {
      console.log(
        JSON.stringify({
          signal,
          attempted,
          acknowledged: acknowledged.size,
          delivered: delivered.size,
        }),
      );
    }
    return { acknowledged: acknowledged.size, delivered: delivered.size };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SIGKILL under load: every SENT-acknowledged message is delivered exactly once", async () => {
  await crashRun("SIGKILL");
});

Deno.test("SIGTERM under load: a clean stop loses no acknowledged message", async () => {
  await crashRun("SIGTERM");
});
