/**
 * `parley serve --check-config`: the effective settings, built exactly as `serve` builds them,
 * and the data dir they point at, checked without starting the server: the dir can be made
 * and written, the identity key (if there is one) is readable and sound, the KV file (if there
 * is one) can be opened for writing and is not from a newer Parley. A cluster node's NATS
 * servers are reached instead, and its data dir's key, if any, must be the cluster's. Problems
 * with the settings themselves are found while they are built (exit 2); problems here are the
 * environment's (exit 1).
 */

import { dirname, join, resolve } from "node:path";
import type { Config } from "../config/config.ts";
import { NatsStoreContext } from "../store/nats/context.ts";
import { clusterFingerprint, storeExists } from "../store/nats/listings.ts";
import { withNats } from "./cluster.ts";
import { readIdentity, storeBytes } from "./data_dir.ts";
import { KV_FILE } from "../store/kv_store.ts";
import { checkSchema, storeIn } from "../store/schema.ts";
import { bytes, table } from "./text.ts";
import { systemClock } from "../clock/clock.ts";

/** File descriptors the server needs beyond one per connection (store, listener, stdio). */
const SPARE_FILES = 64;

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    // A file where a directory should be shows as NotADirectory; the caller explains it.
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/** Proves `dir` writable the only reliable way (ACLs, read-only mounts, root): by writing. */
async function probeWritable(dir: string, what: string): Promise<void> {
  try {
    await Deno.remove(await Deno.makeTempFile({ dir, prefix: ".parley-check-" }));
  } catch (e) {
    throw new Error(`${what} "${dir}" is not writable: ${(e as Error).message}`);
  }
}

/** Describes the data dir, or throws one sentence about what is wrong with it. */
async function checkDataDir(dataDir: string): Promise<string> {
  const info = await statOrNull(dataDir);
  if (info && !info.isDirectory) {
    throw new Error(`The data dir "${dataDir}" is a file, not a directory`);
  }
  if (!info) {
    let parent = dirname(dataDir);
    let parentInfo = await statOrNull(parent);
    while (!parentInfo && dirname(parent) !== parent) {
      parent = dirname(parent);
      parentInfo = await statOrNull(parent);
    }
    if (!parentInfo?.isDirectory) {
      throw new Error(`The data dir "${dataDir}" cannot be made: "${parent}" is not a directory`);
    }
    await probeWritable(parent, `The data dir cannot be made, as`);
    return "does not exist yet; made at the first start";
  }
  await probeWritable(dataDir, "The data dir");
  const identity = await readIdentity(dataDir);
  const kvFile = join(dataDir, KV_FILE);
  if (await statOrNull(kvFile)) {
    try {
      (await Deno.open(kvFile, { read: true, write: true })).close();
    } catch (e) {
      throw new Error(
        `The store "${kvFile}" cannot be opened for writing: ${(e as Error).message}`,
      );
    }
    // Read only, so safe beside a running server; the server upgrades an older layout itself.
    const kv = await Deno.openKv(kvFile);
    try {
      await checkSchema(kv, storeIn(dataDir), { older: true });
    } finally {
      kv.close();
    }
  }
  const store = (await statOrNull(kvFile))
    ? `store ${bytes(await storeBytes(dataDir))}`
    : "no store yet";
  const key = identity ? `identity ${identity.fingerprint}` : "no identity key yet";
  return `${store}; ${key}`;
}

/** The soft limit on open files, where the system says (Linux); null elsewhere. */
async function openFileLimit(): Promise<number | null> {
  try {
    const limits = await Deno.readTextFile("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    return m && m[1] !== "unlimited" ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The cluster in a line (and the data dir's, which a node uses only for a key of its own): off,
 * or the NATS server reached and what the prefix holds. An unreachable cluster, or a key that is
 * not the cluster's, is the environment's problem: thrown, as the node would refuse to start.
 */
async function describeCluster(config: Config, dataDir: string): Promise<[string, string]> {
  const cluster = config.cluster;
  if (cluster.nats.length === 0) return ["off: a single server on Deno KV", ""];
  const local = await readIdentity(dataDir);
  return await withNats(cluster, "check", async (nc) => {
    const ctx = await NatsStoreContext.open(nc, {
      prefix: cluster.prefix,
      replicas: cluster.replicas,
      worldBacklog: config.world.backlog,
      clock: systemClock,
    });
    const where = `${nc.getServer()} answers; prefix "${cluster.prefix}", ${cluster.replicas} ` +
      "replicas";
    const key = await storeExists(ctx) ? await clusterFingerprint(ctx) : null;
    if (local && key && local.fingerprint !== key) {
      throw new Error(
        `The identity key in ${dataDir} (${local.fingerprint}) is not the cluster's (${key}): ` +
          "a node with it would not start; remove the file to use the cluster's",
      );
    }
    const dir = local
      ? `not used by a node but for its identity key, ${local.fingerprint}` +
        (key ? ", the cluster's" : ", which becomes the cluster's at the first start")
      : "not used by a cluster node";
    return [
      key
        ? `${where}; a store with identity ${key}`
        : `${where}; no store yet (the first node makes it)`,
      dir,
    ];
  });
}

export interface CheckFlags {
  configFile?: string;
  logLevel: string;
  logJson: boolean;
}

/**
 * The web listener in a line: off, or its URL; with TLS, the files are read and must hold a
 * certificate and a key (the environment's problem if not: thrown); plain HTTP on an address
 * other than loopback says why browsers will refuse it.
 */
async function describeWeb(web: Config["web"]): Promise<string> {
  if (!web.enabled) return "off (--web turns it on)";
  const host = web.host.includes(":") ? `[${web.host}]` : web.host;
  if (web.tls !== null) {
    const pem = async (path: string, setting: string, kind: RegExp) => {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        throw new Error(`Cannot read ${setting} "${path}": ${(e as Error).message}`);
      }
      if (!kind.test(text)) throw new Error(`${setting} "${path}" holds no PEM ${kind.source}`);
    };
    await pem(web.tls.cert, "web.tls.cert", /-----BEGIN CERTIFICATE-----/);
    await pem(web.tls.key, "web.tls.key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    return `https://${host}:${web.port}/ (certificate ${web.tls.cert})`;
  }
  const loopback = web.host === "localhost" || web.host === "::1" || web.host.startsWith("127.");
  return `http://${host}:${web.port}/` + (loopback ? "" : "; browsers refuse the client over " +
    "plain HTTP from another address (no WebCrypto outside secure contexts): set web.tls or " +
    "use an HTTPS reverse proxy");
}

export async function checkConfig(config: Config, flags: CheckFlags): Promise<number> {
  const dataDir = resolve(config.dataDir);
  const [cluster, clusterDir] = await describeCluster(config, dataDir);
  const dir = clusterDir || await checkDataDir(dataDir);
  const web = await describeWeb(config.web);
  const { limits, accounts, queue } = config;
  console.log(
    `The configuration is valid (defaults${flags.configFile ? `, ${flags.configFile}` : ""}, ` +
      "flags).",
  );
  console.log(
    table([
      ["listen", `${config.host}:${config.port}`],
      ["web", web],
      ["cluster", cluster],
      ["data dir", `${dataDir} (${dir})`],
      [
        "connections",
        `${limits.maxConnections} at most, ${limits.maxConnectionsPerIp} per address`,
      ],
      [
        "sizes",
        `text ${bytes(limits.maxTextBytes)}, image ${bytes(limits.maxImageBytes)}, ` +
        `file ${bytes(limits.maxFileBytes)}, frame ${bytes(limits.maxFrameBytes)}`,
      ],
      ["queue", `${queue.maxMessages} messages or ${bytes(queue.maxBytes)} per user`],
      [
        "passwords",
        `at least ${accounts.minPasswordLength} characters; ` +
        `scrypt N=${accounts.scrypt.N} r=${accounts.scrypt.r} p=${accounts.scrypt.p}`,
      ],
      [
        "registration",
        `${accounts.registration}; at most ${accounts.registerPerIp} an hour per address, ` +
        `${accounts.registerPerHour} an hour in all`,
      ],
      ["log", `${flags.logJson ? "JSON lines" : "text"}, level ${flags.logLevel}`],
    ]).replace(/^/gm, "  "),
  );
  const files = await openFileLimit();
  if (files !== null && files < limits.maxConnections + SPARE_FILES) {
    console.log(
      `  Note: this process may open ${files} files, fewer than limits.maxConnections ` +
        `(${limits.maxConnections}) needs; raise it (ulimit -n, or LimitNOFILE in systemd).`,
    );
  }
  return 0;
}
