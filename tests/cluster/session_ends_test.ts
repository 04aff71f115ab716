/**
 * Ends of sessions are at most once on NATS (core NATS, `<prefix>.hub.end`): a node cut off
 * from NATS while another node ends a user's sessions (a new password, a logout everywhere)
 * misses the message. Once it is back, it checks its sessions against the store and ends the
 * ones whose credentials changed, telling the client why, as the lost end would have.
 *
 * Two real Parley nodes in this process over three NATS servers: node A knows all three, node B
 * reaches one through a proxy (tests/helpers/nats_proxy.ts) that cuts it off and lets it back.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type ConnectOptions, ParleyClient } from "../../src/client/client.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { type Logger, silentLogger } from "../../src/server/log.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { connectCluster } from "../../src/cluster/connect.ts";
import { destroyNatsStore } from "../../src/store/nats/nats_store.ts";
import { freshPrefix } from "../helpers/cluster.ts";
import { type NatsCluster, natsTest } from "../helpers/nats.ts";
import { NatsProxy } from "../helpers/nats_proxy.ts";
import { testConfig } from "../helpers/server.ts";

/** Once B's link is back, the stale session must end within this (B reconnects within 0.35 s). */
const BOUND_MS = 8000;

/** Two nodes' world: node A knows the NATS servers, node B reaches one through `proxy`. */
interface Nodes {
  proxy: NatsProxy;
  /** A node on `urls`; `N`, its scrypt cost (the test config's when absent). */
  start(name: string, urls: string[], N?: number, log?: Logger): Promise<RunningServer>;
  connect(s: RunningServer, extra?: Partial<ConnectOptions>): Promise<ParleyClient>;
}

async function withNodes(nats: NatsCluster, fn: (n: Nodes) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-ends-" });
  const prefix = freshPrefix();
  const servers: RunningServer[] = [];
  const clients: ParleyClient[] = [];
  const knownHosts = new KnownHosts(join(dir, "known_hosts"));
  const proxy = NatsProxy.start(nats.urls[1]);
  try {
    await fn({
      proxy,
      async start(name, urls, N, log = silentLogger) {
        const config = testConfig(join(dir, name), {
          cluster: { nats: urls, prefix, nodeTimeoutMs: 3000 },
          ...(N ? { accounts: { scrypt: { N, r: 8, p: 1 } } } : {}),
        });
        const s = await startServer(config, log, { strictInvariants: true });
        servers.push(s);
        return s;
      },
      async connect(s, extra = {}) {
        const c = await ParleyClient.connect({
          host: "127.0.0.1",
          port: s.addr.port,
          knownHosts,
          ...extra,
        });
        clients.push(c);
        return c;
      },
    });
  } finally {
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    for (const s of servers) await s.close();
    proxy.close();
    const nc = await connectCluster(nats.urls, { name: "parley-test-cleanup" });
    try {
      await destroyNatsStore(nc, prefix);
    } finally {
      await nc.close();
    }
    await Deno.remove(dir, { recursive: true });
  }
}

natsTest(
  "cluster: a password change or a logout everywhere made while a node was cut off from NATS ends its sessions once it is back",
  async (nats) => {
    await withNodes(nats, async ({ proxy, start, connect }) => {
      const a = await start("a", [nats.urls[0], nats.urls[2]]);
      const b = await start("b", [proxy.url]);
      await (await connect(a)).register("vic", "old password");

      /**
       * Cuts B off, runs `change` through A meanwhile, lets B back: the reason of the KICK that
       * ends `onB`, a session of B.
       */
      const whileCut = async (onB: ParleyClient, change: () => Promise<void>) => {
        let ended = false;
        const kicked = onB.nextEvent(MsgType.KICK, 60_000).finally(() => ended = true);
        kicked.catch(() => {}); // awaited below
        proxy.cut();
        await change();
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(ended, false, "B heard nothing while cut off");
        proxy.heal();
        const back = Date.now();
        const reason = ((await Promise.race([
          kicked,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error("the stale session on B lives on")), BOUND_MS)
          ),
        ])) as { body: { reason: string } }).body.reason;
        console.log(`  ended ${Date.now() - back} ms after B's link came back`);
        return reason;
      };

      // A script with vic's password on B (a one-shot session: no login takes it over); vic,
      // on A, changes the password.
      const script = await connect(b, { oneShot: true });
      await script.login("vic", "old password");
      const vic = await connect(a);
      await vic.login("vic", "old password");
      const newPassword = await whileCut(script, async () => {
        await vic.changePassword("old password", "new password");
      });
      assert.equal(newPassword, `The password of "vic" was changed; log in with the new one`);

      // Vic's session on B (with its resume token); a script on A logs out everywhere.
      const device = await connect(b);
      await device.login("vic", "new password");
      const everywhere = await whileCut(device, async () => {
        const other = await connect(a, { oneShot: true });
        await other.login("vic", "new password");
        await other.logout(true);
      });
      assert.match(everywhere, /resume tokens of "vic" were revoked/);
    });
  },
);

natsTest(
  "cluster: a login that rehashes an outdated password hash on one node ends no session on another; a new password still does",
  async (nats) => {
    await withNodes(nats, async ({ proxy, start, connect }) => {
      /** B's rechecks of tokens, as it logs them. */
      const rechecks: { ended: number }[] = [];
      const logOfB: Logger = {
        ...silentLogger,
        info: (event, fields) => {
          if (event === "cluster.rechecked" && fields?.tokens) {
            rechecks.push({ ended: fields.ended as number });
          }
        },
      };
      /** Cuts B off NATS and lets it back: B rechecks its sessions' tokens and password stamps. */
      const recheckOnB = async () => {
        const before = rechecks.length;
        proxy.cut();
        await new Promise((r) => setTimeout(r, 300));
        proxy.heal();
        const deadline = Date.now() + BOUND_MS;
        while (rechecks.length === before) {
          assert.ok(Date.now() < deadline, "B rechecked after its link came back");
          await new Promise((r) => setTimeout(r, 50));
        }
        return rechecks[rechecks.length - 1];
      };
      // A hashes at a higher cost than B: an account made on B has an outdated hash on A.
      const a = await start("a", [nats.urls[0], nats.urls[2]], 2048, silentLogger);
      const b = await start("b", [proxy.url], 1024, logOfB);
      await (await connect(b)).register("vic", "the password");
      // Vic's device on B (with its resume token) and a script of vic's on B.
      const device = await connect(b);
      await device.login("vic", "the password");
      const watched = await connect(b, { oneShot: true });
      await watched.login("vic", "the password");
      let kicked = 0;
      const kicks = [device, watched].map((c) => {
        const kick = c.nextEvent(MsgType.KICK, 60_000).finally(() => kicked++);
        kick.catch(() => {}); // awaited below
        return kick;
      });
      // A script logs in on A (a one-shot session takes nothing over): A rehashes vic's password.
      const script = await connect(a, { oneShot: true });
      await script.login("vic", "the password");
      assert.equal((await recheckOnB()).ended, 0, "the rehash ended nothing");
      await device.ping();
      await watched.ping();
      assert.equal(kicked, 0, "vic's sessions on B live on");
      // A new password (vic on A, while B is cut off): B's recheck ends the script there.
      device.close();
      const vic = await connect(a);
      await vic.login("vic", "the password");
      proxy.cut();
      await vic.changePassword("the password", "a new password");
      await new Promise((r) => setTimeout(r, 300));
      proxy.heal();
      const reason = ((await kicks[1]).body as { reason: string }).reason;
      assert.equal(reason, `The password of "vic" was changed; log in with the new one`);
    });
  },
);
