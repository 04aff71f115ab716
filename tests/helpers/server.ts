/** A real server on a loopback port with a fresh KV file in a temp dir, and clients for it. */

import { join } from "node:path";
import { type ConnectOptions, ParleyClient } from "../../src/client/client.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import { applyConfig, type Config, defaultConfig } from "../../src/config/config.ts";
import { silentLogger } from "../../src/server/log.ts";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server/server.ts";

/** A broken invariant fails the test where it broke, instead of being logged and counted. */
const STRICT = { strictInvariants: true };

/** Settings for tests: loopback, a free port, and a fast scrypt so the suite stays quick. */
export function testConfig(dataDir: string, patch: Record<string, unknown> = {}): Config {
  const base = applyConfig(defaultConfig(), {
    host: "127.0.0.1",
    port: 0,
    dataDir,
    // Tests register many users from one address; the registration budget has its own test.
    accounts: {
      scrypt: { N: 1024, r: 8, p: 1 },
      registerPerIp: 1_000_000,
      registerPerHour: 1_000_000,
    },
    // Tests send in bursts; the rate limit has its own test.
    limits: {
      requestRate: 1_000_000,
      requestBurst: 1_000_000,
      preLoginRequestRate: 1_000_000,
      preLoginRequestBurst: 1_000_000,
    },
    // In-process servers (and their clients) use node:crypto, the implementation every platform
    // has; servers run as child processes use OpenSSL where it loads (tests/cli, aes_gcm_test).
    crypto: { nativeAes: false },
  }, "test");
  return applyConfig(base, patch, "test");
}

export class TestServer {
  readonly clients: ParleyClient[] = [];
  readonly knownHosts: KnownHosts;

  private constructor(
    public server: RunningServer,
    public config: Config,
    readonly dir: string,
    /** What the server was started with (a test's ManualClock, say); kept across restarts. */
    readonly options: ServerOptions,
  ) {
    this.knownHosts = new KnownHosts(join(dir, "client", "known_hosts"));
  }

  static async start(
    patch: Record<string, unknown> = {},
    options: ServerOptions = {},
  ): Promise<TestServer> {
    const dir = await Deno.makeTempDir({ prefix: "parley-test-" });
    const config = testConfig(join(dir, "data"), patch);
    const strict = { ...STRICT, ...options };
    return new TestServer(await startServer(config, silentLogger, strict), config, dir, strict);
  }

  get port(): number {
    return this.server.addr.port;
  }

  /** A new client connection (closed by stop()). */
  async connect(extra: Partial<ConnectOptions> = {}): Promise<ParleyClient> {
    const client = await ParleyClient.connect({
      host: "127.0.0.1",
      port: this.port,
      knownHosts: this.knownHosts,
      ...extra,
    });
    this.clients.push(client);
    return client;
  }

  /** A client that has registered and logged in as `name`. */
  async user(name: string, password = "password-" + name): Promise<ParleyClient> {
    const client = await this.connect();
    await client.register(name, password);
    await client.login(name, password);
    return client;
  }

  /** Stops the server and starts it again on the same port and data dir. */
  async restart(): Promise<void> {
    await this.closeClients();
    await this.server.close();
    // The same ports again: clients (and a browser's page, whose origin names the web port)
    // come back to where they were.
    const web = this.server.web === null
      ? this.config.web
      : { ...this.config.web, port: Number(new URL(this.server.web).port) };
    this.config = { ...this.config, port: this.port, web };
    this.server = await startServer(this.config, silentLogger, this.options);
  }

  async closeClients(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all(this.clients.map((c) => c.closed));
    this.clients.length = 0;
  }

  async stop(): Promise<void> {
    await this.closeClients();
    await this.server.close();
    await Deno.remove(this.dir, { recursive: true });
  }
}

/**
 * Runs `fn` with a fresh server, stopping it afterwards whatever happens. Tests of time pass a
 * ManualClock in `options.clock` and advance it instead of sleeping. Everything timed then waits
 * for that clock: the keepalive, limits, deadlines, token expiry, and the store's deferred
 * writes (a SEND to an online recipient that does not ACK is SENT only once DEFER_MS and the committer's DEFER_GRAIN_MS pass). A
 * connection's session exists once it has had an answer: get one before moving the clock.
 */
export async function withServer(
  fn: (t: TestServer) => Promise<void>,
  patch: Record<string, unknown> = {},
  options: ServerOptions = {},
): Promise<void> {
  const t = await TestServer.start(patch, options);
  try {
    await fn(t);
  } finally {
    await t.stop();
  }
}
