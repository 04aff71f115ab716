/**
 * Server configuration: the embedded defaults (config.json, compiled into the binary), an
 * optional operator file on top, then command-line flags. Every value is checked; a bad one
 * is reported in one sentence naming the setting.
 */

import defaults from "../../config.json" with { type: "json" };

/**
 * How frames are sealed (see src/crypto/aes_gcm.ts): OpenSSL where it works ("auto"), OpenSSL
 * or no start ("require"), or node:crypto ("off").
 */
export type NativeAes = "auto" | "require" | "off";

/** The web listener's certificate chain and private key, PEM files (`web.tls`). */
export interface WebTls {
  cert: string;
  key: string;
}

type Defaults = typeof defaults;

export type Config = Omit<Defaults, "web" | "cluster"> & {
  /** With NATS servers, a node of a cluster (docs/cluster.md); none: one server on Deno KV. */
  cluster: Omit<Defaults["cluster"], "nats"> & { nats: string[] };
  crypto: { nativeAes: NativeAes };
  web: Omit<Defaults["web"], "tls" | "origins" | "alternates" | "trustedProxies"> & {
    tls: WebTls | null;
    origins: string[];
    /** The other nodes' chat WebSockets, for the web client to fail over to (web_listener.ts). */
    alternates: string[];
    trustedProxies: string[];
  };
};

/**
 * What a world message adds to INITIALIZE beyond its text's UTF-8 bytes, at most: the PASS
 * body's other fields (id, seq, time, source_username, type, world) with their keys and headers.
 */
export const WORLD_ENTRY_OVERHEAD_BYTES = 256;

/**
 * The share of the frame limit that INITIALIZE's world backlog may fill: the rest is for the
 * friends and groups lists. Settings are checked against it (config.ts), and a backlog stored
 * under larger limits than today's is cut to it, newest kept.
 */
export const WORLD_BACKLOG_FRAME_SHARE = 0.5;

/** The largest the world backlog may encode to in INITIALIZE under these limits. */
export function worldBacklogBudget(maxFrameBytes: number): number {
  return Math.floor(maxFrameBytes * WORLD_BACKLOG_FRAME_SHARE);
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Per-setting bounds, by dotted path; settings not listed need only the default's type. */
const RULES: Record<string, { min: number; max: number; powerOfTwo?: boolean }> = {
  port: { min: 0, max: 65535 },
  "http.port": { min: 0, max: 65535 },
  "http.maxConnections": { min: 1, max: 10_000 },
  "http.requestTimeoutMs": { min: 100, max: 600_000 },
  "web.port": { min: 0, max: 65535 },
  "web.headTimeoutMs": { min: 100, max: 600_000 },
  "cluster.replicas": { min: 1, max: 5 },
  "cluster.nodeTimeoutMs": { min: 1000, max: 600_000 },
  "limits.maxFrameBytes": { min: 1024, max: 128 * 1024 * 1024 },
  "limits.handshakeTimeoutMs": { min: 100, max: 600_000 },
  "limits.loginTimeoutMs": { min: 100, max: 3_600_000 },
  "limits.preLoginFrameBytes": { min: 4096, max: 16 * 1024 * 1024 },
  "limits.pingIntervalMs": { min: 100, max: 3_600_000 },
  "limits.pingTimeoutMs": { min: 100, max: 3_600_000 },
  "limits.maxConnections": { min: 1, max: 1_000_000 },
  "limits.maxConnectionsPerIp": { min: 1, max: 1_000_000 },
  "limits.ipv6PrefixBits": { min: 1, max: 128 },
  "limits.requestRate": { min: 1, max: 10_000_000 },
  "limits.requestBurst": { min: 1, max: 10_000_000 },
  "limits.preLoginRequestRate": { min: 1, max: 10_000_000 },
  "limits.preLoginRequestBurst": { min: 1, max: 10_000_000 },
  "accounts.loginFreeFailures": { min: 0, max: 1000 },
  "accounts.loginNameFailures": { min: 0, max: 100_000 },
  "accounts.registerPerIp": { min: 1, max: 1_000_000 },
  "accounts.registerPerHour": { min: 1, max: 10_000_000 },
  "accounts.loginDelayMs": { min: 1, max: 3_600_000 },
  "accounts.loginMaxDelayMs": { min: 1, max: 86_400_000 },
  "limits.maxOutboundBytes": { min: 64 * 1024, max: 1024 * 1024 * 1024 },
  "limits.preLoginOutboundBytes": { min: 64 * 1024, max: 1024 * 1024 * 1024 },
  "limits.serverOutboundBytes": { min: 64 * 1024, max: 2 ** 40 },
  "limits.writeStallMs": { min: 100, max: 3_600_000 },
  "limits.maxValueDepth": { min: 2, max: 64 },
  "limits.maxTextBytes": { min: 1, max: 1024 * 1024 },
  "limits.maxImageBytes": { min: 0, max: 64 * 1024 * 1024 },
  "limits.maxFileBytes": { min: 0, max: 2 ** 50 },
  // A CREATE_G naming every member must fit in one frame's values (MAX_FRAME_VALUES, 16,384).
  "limits.maxGroupMembers": { min: 2, max: 16_000 },
  "limits.maxGroupNameLength": { min: 1, max: 255 },
  "limits.maxGroupsPerUser": { min: 1, max: 100_000 },
  "limits.maxFriends": { min: 1, max: 100_000 },
  "limits.maxBlocks": { min: 1, max: 100_000 },
  "limits.maxInvitations": { min: 1, max: 100_000 },
  "queue.maxMessages": { min: 1, max: 10_000_000 },
  "queue.maxBytes": { min: 1024, max: 2 ** 40 },
  "queue.senderSharePercent": { min: 1, max: 100 },
  "queue.maxSenderBytes": { min: 1024, max: 2 ** 50 },
  "queue.senderBytesPerMinute": { min: 1024, max: 2 ** 50 },
  "queue.maxTotalBytes": { min: 1024, max: 2 ** 50 },
  "world.backlog": { min: 0, max: 10_000 },
  "files.chunkBytes": { min: 1024, max: 1024 * 1024 },
  "files.window": { min: 1, max: 1024 },
  "files.maxTransfersPerUser": { min: 1, max: 1000 },
  "accounts.minPasswordLength": { min: 1, max: 128 },
  "accounts.scrypt.N": { min: 2, max: 2 ** 20, powerOfTwo: true },
  "accounts.scrypt.r": { min: 1, max: 32 },
  "accounts.scrypt.p": { min: 1, max: 16 },
  "accounts.hashConcurrency": { min: 1, max: 64 },
  "accounts.hashQueue": { min: 0, max: 100_000 },
  "accounts.tokenTtlDays": { min: 1, max: 3650 },
  "accounts.tokensPerUser": { min: 1, max: 1000 },
};

/** Who may REGISTER: anyone, those with an invite code (`parley admin invite`), or no one. */
const REGISTRATION_MODES = ["open", "invite", "closed"];

const NATIVE_AES_MODES: NativeAes[] = ["auto", "require", "off"];

/**
 * Settings that were booleans in older config files and became a choice: what each boolean
 * means now, so that those files keep working.
 */
const FORMER_BOOLEANS: Record<string, { true: string; false: string }> = {
  "crypto.nativeAes": { true: "auto", false: "off" },
};

/** Settings whose shape is not their default's (null or an object, a list): checkWeb checks them. */
const CHECKED_TOGETHER = new Set([
  "web.tls",
  "web.origins",
  "web.alternates",
  "web.trustedProxies",
  "cluster.nats",
]);

/** A deep copy of the embedded defaults. */
export function defaultConfig(): Config {
  return structuredClone(defaults) as Config;
}

type Tree = { [key: string]: unknown };

function isTree(v: unknown): v is Tree {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Applies `patch` onto `base` (both shaped like the defaults), checking every value.
 * `source` names where the patch came from, for the error sentence.
 */
export function applyConfig(base: Config, patch: unknown, source: string): Config {
  const out = structuredClone(base) as unknown as Tree;
  merge(out, patch, "", source);
  const config = out as unknown as Config;
  checkTogether(config, source);
  return config;
}

/** Limits that only make sense relative to each other. */
function checkTogether(c: Config, source: string): void {
  const { limits, files } = c;
  if (!NATIVE_AES_MODES.includes(c.crypto.nativeAes)) {
    throw new ConfigError(
      `${source}: "crypto.nativeAes" must be one of ${
        NATIVE_AES_MODES.map((m) => `"${m}"`).join(", ")
      } (or true for "auto", false for "off")`,
    );
  }
  if (!REGISTRATION_MODES.includes(c.accounts.registration)) {
    throw new ConfigError(
      `${source}: "accounts.registration" must be one of ${
        REGISTRATION_MODES.map((m) => `"${m}"`).join(", ")
      }`,
    );
  }
  // An empty host would listen on every interface: the endpoint has no authentication.
  if (c.http.host.trim() === "") {
    throw new ConfigError(`${source}: "http.host" must name an address, for example 127.0.0.1`);
  }
  checkWeb(c.web, source);
  checkCluster(c.cluster, source);
  // Room for the largest image or file chunk plus its message envelope.
  const largest = Math.max(limits.maxImageBytes, limits.maxTextBytes * 3, files.chunkBytes) + 4096;
  if (limits.maxFrameBytes < largest) {
    throw new ConfigError(
      `${source}: "limits.maxFrameBytes" must be at least ${largest} to carry the largest image, text or file chunk`,
    );
  }
  // One sender's share of an inbox, and the store budgets, must each take the largest message:
  // otherwise it could never be sent.
  const message = Math.max(limits.maxImageBytes, limits.maxTextBytes * 3) + 4096;
  const { queue } = c;
  const shares: [string, number][] = [
    [
      '"queue.maxBytes" × "queue.senderSharePercent" / 100',
      queue.maxBytes * queue.senderSharePercent / 100,
    ],
    ['"queue.maxSenderBytes"', queue.maxSenderBytes],
    ['"queue.maxTotalBytes"', queue.maxTotalBytes],
  ];
  for (const [what, bytes] of shares) {
    if (bytes < message) {
      throw new ConfigError(
        `${source}: ${what} must be at least ${message} to take the largest message`,
      );
    }
  }
  if (limits.maxOutboundBytes < 2 * limits.maxFrameBytes) {
    throw new ConfigError(
      `${source}: "limits.maxOutboundBytes" must be at least twice "limits.maxFrameBytes"`,
    );
  }
  // Room for the echo of the largest pre-login frame and the frame after it.
  if (limits.preLoginOutboundBytes < 2 * limits.preLoginFrameBytes) {
    throw new ConfigError(
      `${source}: "limits.preLoginOutboundBytes" must be at least twice "limits.preLoginFrameBytes"`,
    );
  }
  if (limits.preLoginOutboundBytes > limits.maxOutboundBytes) {
    throw new ConfigError(
      `${source}: "limits.preLoginOutboundBytes" must not be above "limits.maxOutboundBytes"`,
    );
  }
  // INITIALIZE carries the world backlog in one frame: it must fit the share of it set aside.
  const entry = limits.maxTextBytes + WORLD_ENTRY_OVERHEAD_BYTES;
  const budget = worldBacklogBudget(limits.maxFrameBytes);
  if (c.world.backlog * entry > budget) {
    throw new ConfigError(
      `${source}: "world.backlog" of ${c.world.backlog} messages of up to ${limits.maxTextBytes} bytes would not fit in INITIALIZE's ${budget} bytes (half of "limits.maxFrameBytes"); with these limits it may be at most ${
        Math.floor(budget / entry)
      }`,
    );
  }
  // Below one client's own allowance, a single slow reader would hold the world room up.
  if (limits.serverOutboundBytes < limits.maxOutboundBytes) {
    throw new ConfigError(
      `${source}: "limits.serverOutboundBytes" must be at least "limits.maxOutboundBytes"`,
    );
  }
}

/** `cluster.nats` lists NATS URLs; the prefix names subjects, buckets and streams. */
function checkCluster(cluster: Config["cluster"], source: string): void {
  const { nats, prefix } = cluster;
  if (
    !Array.isArray(nats) ||
    nats.some((u) => typeof u !== "string" || !/^(nats|tls):\/\/\S+$/.test(u))
  ) {
    throw new ConfigError(
      `${source}: "cluster.nats" must be a list of NATS addresses, like ["nats://10.0.0.1:4222"]`,
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/.test(prefix)) {
    throw new ConfigError(
      `${source}: "cluster.prefix" must be 1 to 32 letters, digits or "-", like "parley"`,
    );
  }
}

/** `web.tls` is null or two file paths; `web.origins` lists origins as browsers send them. */
function checkWeb(web: Config["web"], source: string): void {
  if (web.host.trim() === "") {
    throw new ConfigError(`${source}: "web.host" must name an address, for example 127.0.0.1`);
  }
  const { tls } = web;
  if (tls !== null) {
    const keys = isTree(tls) ? Object.keys(tls).sort().join(",") : "";
    if (
      keys !== "cert,key" || typeof tls.cert !== "string" || typeof tls.key !== "string" ||
      tls.cert === "" || tls.key === ""
    ) {
      throw new ConfigError(
        `${source}: "web.tls" must be null or {"cert": "FILE", "key": "FILE"} (PEM files)`,
      );
    }
  }
  if (!Array.isArray(web.origins)) {
    throw new ConfigError(`${source}: "web.origins" must be a list of origins`);
  }
  checkAlternates(web.alternates, source);
  const proxies = web.trustedProxies;
  if (!Array.isArray(proxies) || !proxies.every((p) => typeof p === "string" && isIpAddress(p))) {
    throw new ConfigError(
      `${source}: "web.trustedProxies" must be a list of IP addresses, like ["127.0.0.1"]`,
    );
  }
  for (const origin of web.origins) {
    if (typeof origin !== "string" || canonicalOrigin(origin) !== origin) {
      throw new ConfigError(
        `${source}: "web.origins" entries must be origins as browsers send them, ` +
          `like "https://chat.example.org" (scheme and host, a port only if not the default; ` +
          `no path, no trailing slash), not ${JSON.stringify(origin)}`,
      );
    }
  }
}

/**
 * `web.alternates`: the WebSocket URLs of the other nodes of a cluster (ws:// or wss://, path
 * /ws), which the web client tries when its own origin's goes away.
 */
function checkAlternates(alternates: unknown, source: string): void {
  const wrong = (what: string) =>
    new ConfigError(
      `${source}: "web.alternates" must list WebSocket URLs of the other nodes, like ` +
        `"wss://node2.example.org/ws", not ${what}`,
    );
  if (!Array.isArray(alternates)) throw wrong(JSON.stringify(alternates));
  for (const text of alternates) {
    let url: URL | null = null;
    try {
      url = typeof text === "string" ? new URL(text) : null;
    } catch {
      url = null;
    }
    if (
      url === null || (url.protocol !== "ws:" && url.protocol !== "wss:") ||
      url.pathname !== "/ws" || url.search !== "" || url.hash !== "" || url.username !== "" ||
      url.password !== "" || url.href !== text
    ) {
      throw wrong(JSON.stringify(text));
    }
  }
}

/** Whether `text` is an IPv4 or IPv6 address (no brackets, no port). */
export function isIpAddress(text: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(text)) {
    return text.split(".").every((b) => Number(b) <= 255);
  }
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(":")) return false;
  try {
    new URL(`http://[${text}]/`);
    return true;
  } catch {
    return false;
  }
}

/**
 * `text` as the Origin header a browser would send for it (lower-case scheme and host, no
 * default port), or null if it is not an http(s) origin.
 */
export function canonicalOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return url.origin;
}

function merge(into: Tree, patch: unknown, prefix: string, source: string): void {
  if (!isTree(patch)) {
    throw new ConfigError(`${source}: ${prefix || "the config"} must be an object`);
  }
  for (const [key, value] of Object.entries(patch)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!Object.hasOwn(into, key)) throw new ConfigError(`${source}: unknown setting "${path}"`);
    const current = into[key];
    if (CHECKED_TOGETHER.has(path)) {
      into[key] = structuredClone(value);
    } else if (isTree(current)) {
      merge(current, value, path, source);
    } else if (typeof current === "number") {
      into[key] = checkNumber(value, path, source);
    } else if (typeof value === "boolean" && Object.hasOwn(FORMER_BOOLEANS, path)) {
      into[key] = FORMER_BOOLEANS[path][`${value}`];
    } else if (typeof value !== typeof current) {
      throw new ConfigError(`${source}: "${path}" must be a ${typeof current}`);
    } else {
      into[key] = value;
    }
  }
}

function checkNumber(value: unknown, path: string, source: string): number {
  const rule = RULES[path] ?? { min: 0, max: Number.MAX_SAFE_INTEGER };
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < rule.min || value > rule.max
  ) {
    throw new ConfigError(
      `${source}: "${path}" must be a whole number from ${rule.min} to ${rule.max}`,
    );
  }
  if (rule.powerOfTwo && (value & (value - 1)) !== 0) {
    throw new ConfigError(`${source}: "${path}" must be a power of two`);
  }
  return value;
}

/** Reads an operator's JSON config file and applies it over `base`. */
export async function loadConfigFile(base: Config, path: string): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(`Cannot read config file "${path}": ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`Config file "${path}" is not valid JSON: ${(e as Error).message}`);
  }
  return applyConfig(base, parsed, `Config file "${path}"`);
}
