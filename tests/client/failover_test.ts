/**
 * A server with several addresses (a cluster's nodes, one identity key): the first reachable
 * one is used, a lost connection resumes at another, a node with another key is refused. Real
 * servers on loopback; two of them "share" state by the second starting on a copy of the
 * first's data dir, as the nodes of a cluster read one store.
 */

import { freePort } from "../../scripts/free_port.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ConnectOptions, ParleyClient } from "../../src/client/client.ts";
import { connectFirst, UnreachableError } from "../../src/client/endpoints.ts";
import type { KnownHosts } from "../../src/client/known_hosts.ts";
import { Link } from "../../src/client/link.ts";
import { ClusterPins, HostKeyChangedError } from "../../src/client/pins.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { IDENTITY_FILE } from "../../src/store/identity.ts";
import { TestServer } from "../helpers/server.ts";

const HOST = "127.0.0.1";

/** A data dir holding `from`'s identity key, so that a server started on it presents it. */
async function dataDirWithKeyOf(from: TestServer): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "parley-node-" });
  await Deno.copyFile(join(from.config.dataDir, IDENTITY_FILE), join(dir, IDENTITY_FILE));
  return dir;
}

/** Copies every file of a stopped server's data dir (the KV file and its journal, the key). */
async function copyDataDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
}

/** Options for a server at `ports`, in order, pinned as one (the terminal client's way). */
function clusterOptions(ports: number[], knownHosts: KnownHosts): ConnectOptions {
  return {
    host: HOST,
    port: ports[0],
    alternates: ports.slice(1).map((port) => ({ host: HOST, port })),
    knownHosts: new ClusterPins(knownHosts, ports.map((p) => `${HOST}:${p}`)),
  };
}

/** A link whose status lines are kept, and a promise per line awaited by a pattern. */
function watchedLink(options: ConnectOptions) {
  const statuses: string[] = [];
  const waiters: { pattern: RegExp; resolve: (s: string) => void }[] = [];
  const link = new Link(options, {
    status: (text) => {
      statuses.push(text);
      for (const w of waiters.filter((w) => w.pattern.test(text))) w.resolve(text);
    },
    event: () => {},
  });
  const status = (pattern: RegExp) =>
    new Promise<string>((resolve) => {
      const seen = statuses.find((s) => pattern.test(s));
      if (seen) resolve(seen);
      else waiters.push({ pattern, resolve });
    });
  return { link, statuses, status };
}

/** What `p` resolves with, or a sentence saying it did not within `ms` (the test then fails). */
async function within<T>(p: Promise<T>, ms = 15_000): Promise<T | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((r) =>
    timer = setTimeout(() => r(`nothing within ${ms} ms`), ms)
  );
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function registered(t: TestServer, name: string): Promise<void> {
  const c = await t.connect();
  await c.register(name, `password-${name}`);
  c.close();
}

Deno.test("connectFirst skips an address nothing listens on and pins the key under every address", async () => {
  const a = await TestServer.start();
  try {
    const dead = freePort(HOST);
    const other = freePort(HOST);
    const { client, at } = await connectFirst(
      clusterOptions([dead, a.port, other], a.knownHosts),
    );
    assert.equal(at, 1);
    assert.equal(client.address, `${HOST}:${a.port}`);
    assert.ok(client.firstContact);
    client.close();
    for (const port of [dead, a.port, other]) {
      assert.ok(await a.knownHosts.lookup(`${HOST}:${port}`), `pinned under port ${port}`);
    }
    // None answering: one error naming each address.
    const none = await connectFirst(clusterOptions([dead, other], a.knownHosts)).catch((e) => e);
    assert.ok(none instanceof UnreachableError, String(none));
    assert.equal(none.failures.length, 2);
    assert.match(none.message, new RegExp(`${HOST}:${dead}.*${HOST}:${other}`));
  } finally {
    await a.stop();
  }
});

Deno.test("Link resumes the session at another address when its server goes away", async () => {
  const a = await TestServer.start();
  const dead = freePort(HOST);
  const bPort = freePort(HOST);
  const bData = join(await Deno.makeTempDir({ prefix: "parley-node-b-" }), "data");
  let b: TestServer | null = null;
  let link: Link | null = null;
  try {
    await registered(a, "alice");
    await registered(a, "bob");
    const options = clusterOptions([dead, a.port, bPort], a.knownHosts);
    const { client, at } = await connectFirst(options);
    assert.equal(at, 1);
    await client.login("alice", "password-alice");
    const watched = watchedLink(options);
    link = watched.link;
    link.open(client, at);

    // A goes away; B comes up on what A stored (a cluster's nodes share one store).
    await a.closeClients();
    await a.server.close();
    await watched.status(/Reconnecting in/);
    await copyDataDir(a.config.dataDir, bData);
    b = await TestServer.start({ port: bPort, dataDir: bData });
    const moved = await within(
      Promise.race([watched.status(/^Reconnected/), link.ended.then((r) => `ended: ${r}`)]),
    );
    assert.equal(moved, `Reconnected to ${HOST}:${bPort}.`, watched.statuses.join(" | "));
    assert.equal(link.client?.address, `${HOST}:${bPort}`);

    // The resumed session works: a message sent on it reaches bob on B.
    await link.sendText({ user: "bob" }, "after the failover");
    const bob = await b.connect();
    await bob.login("bob", "password-bob");
    const pass = await bob.nextEvent(MsgType.PASS);
    assert.equal((pass.body as { data: string }).data, "after the failover");
  } finally {
    link?.close();
    await b?.stop();
    await Deno.remove(join(bData, ".."), { recursive: true });
    await a.stop().catch(() => {});
  }
});

Deno.test("Link moved to a node that does not know its token ends as a refused resume does", async () => {
  const a = await TestServer.start();
  const bData = await dataDirWithKeyOf(a);
  const b = await TestServer.start({ dataDir: bData });
  let link: Link | null = null;
  try {
    await registered(a, "alice");
    const options = clusterOptions([a.port, b.port], a.knownHosts);
    const { client, at } = await connectFirst(options);
    assert.equal(at, 0);
    await client.login("alice", "password-alice");
    const watched = watchedLink(options);
    link = watched.link;
    link.open(client, at);
    await a.closeClients();
    await a.server.close();
    // B presents the same key, so it is accepted; its store has never heard of the token.
    assert.equal(
      await within(link.ended),
      "The server no longer accepts this session; log in again",
    );
    assert.ok(watched.statuses.some((s) => /Reconnecting in/.test(s)), watched.statuses.join());
  } finally {
    link?.close();
    await b.stop();
    await Deno.remove(bData, { recursive: true });
    await a.stop().catch(() => {});
  }
});

Deno.test("Link refuses a node presenting a key other than the one pinned for the list", async () => {
  const a = await TestServer.start();
  // C has a key of its own: not a node of A's cluster, whatever the list says.
  const c = await TestServer.start();
  let link: Link | null = null;
  try {
    await registered(a, "alice");
    const options = clusterOptions([a.port, c.port], a.knownHosts);
    const { client, at } = await connectFirst(options);
    await client.login("alice", "password-alice");
    const watched = watchedLink(options);
    link = watched.link;
    link.open(client, at);
    await a.closeClients();
    await a.server.close();
    const reason = await within(link.ended);
    assert.match(reason, new RegExp(`server at ${HOST}:${c.port} presented identity key`));
    assert.ok(!watched.statuses.some((s) => /^Reconnected/.test(s)), watched.statuses.join());

    // A first connection is refused too, rather than passed over for the next address.
    const refused = await connectFirst(clusterOptions([c.port, a.port], a.knownHosts))
      .catch((e) => e);
    assert.ok(refused instanceof HostKeyChangedError, String(refused));
  } finally {
    link?.close();
    await c.stop();
    await a.stop().catch(() => {});
  }
});

Deno.test("ClusterPins refuses addresses whose pinned keys differ", async () => {
  const a = await TestServer.start();
  const c = await TestServer.start();
  try {
    // Each pinned alone, as two single servers.
    (await a.connect()).close();
    const single = await ParleyClient.connect({
      host: HOST,
      port: c.port,
      knownHosts: a.knownHosts,
    });
    single.close();
    const both = await connectFirst(clusterOptions([a.port, c.port], a.knownHosts)).catch((e) => e);
    assert.ok(both instanceof HostKeyChangedError, String(both));
    assert.match(both.message, /different keys pinned/);
  } finally {
    await c.stop();
    await a.stop();
  }
});
