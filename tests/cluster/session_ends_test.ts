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
import { silentLogger } from "../../src/server/log.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { connectCluster } from "../../src/cluster/connect.ts";
import { destroyNatsStore } from "../../src/store/nats/nats_store.ts";
import { freshPrefix } from "../helpers/cluster.ts";
import { natsTest } from "../helpers/nats.ts";
import { NatsProxy } from "../helpers/nats_proxy.ts";
import { testConfig } from "../helpers/server.ts";

/** Once B's link is back, the stale session must end within this (B reconnects within 0.35 s). */
const BOUND_MS = 8000;

natsTest(
  "cluster: a password change or a logout everywhere made while a node was cut off from NATS ends its sessions once it is back",
  async (nats) => {
    const dir = await Deno.makeTempDir({ prefix: "parley-ends-" });
    const prefix = freshPrefix();
    const servers: RunningServer[] = [];
    const clients: ParleyClient[] = [];
    const knownHosts = new KnownHosts(join(dir, "known_hosts"));
    const proxy = NatsProxy.start(nats.urls[1]);
    const start = async (name: string, urls: string[]) => {
      const config = testConfig(join(dir, name), {
        cluster: { nats: urls, prefix, nodeTimeoutMs: 3000 },
      });
      const s = await startServer(config, silentLogger, { strictInvariants: true });
      servers.push(s);
      return s;
    };
    const connect = async (s: RunningServer, extra: Partial<ConnectOptions> = {}) => {
      const c = await ParleyClient.connect({
        host: "127.0.0.1",
        port: s.addr.port,
        knownHosts,
        ...extra,
      });
      clients.push(c);
      return c;
    };
    try {
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
  },
);
