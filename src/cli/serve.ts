/** `parley serve`: run the server until SIGINT or SIGTERM. */

import { checkConfig } from "../admin/check_config.ts";
import { parseClusterUrls } from "../cluster/connect.ts";
import { applyConfig, type Config, defaultConfig, loadConfigFile } from "../config/config.ts";
import { chooseAesGcm, giveUpNativeCode } from "../crypto/aes_gcm.ts";
import { createLogger, type LogLevel } from "../server/log.ts";
import { startServer } from "../server/server.ts";
import { parseFlags, UsageError } from "../terminal/usage.ts";

export const SERVE_HELP = `Usage: parley serve [options]

Runs the Parley server. Settings come from the embedded defaults, then --config FILE,
then the flags below.

Options:
  --host HOST         Address to listen on (default 0.0.0.0)
  --port PORT         TCP port (default 7070; 0 picks a free one)
  --data DIR          Data directory: the KV store and the server's identity key
                      (default ./parley-data)
  --config FILE       JSON file with settings to apply over the defaults
  --http              Serve /healthz and /metrics over HTTP (default off)
  --http-host HOST    Address for HTTP (default 127.0.0.1); implies --http
  --http-port PORT    Port for HTTP (default 9464; 0 picks a free one); implies --http
  --web               Serve the web client and its WebSocket (default off)
  --web-host HOST     Address for the web client (default 127.0.0.1); implies --web
  --web-port PORT     Port for the web client (default 8080; 0 picks a free one); implies --web
  --web-cert FILE     PEM certificate chain: serve HTTPS (with --web-key); implies --web
  --web-key FILE      PEM private key of --web-cert; implies --web
  --cluster URLS      Run as a node of a cluster: all data in NATS JetStream at these
                      servers (nats://HOST:PORT,...); see docs/cluster.md
  --log-level LEVEL   debug, info, warn or error (default info)
  --log-json          Write logs as JSON lines
  --check-config      Check the settings and the data dir, print a summary and exit
                      (0: fine, 2: a setting is wrong, 1: the data dir or key is not usable)
  -h, --help          Show this help
`;

const LEVELS = ["debug", "info", "warn", "error"];

/** Builds the effective configuration from the defaults, a file and the flags. */
export async function serveConfig(
  args: string[],
): Promise<{ config: Config; values: Record<string, unknown> }> {
  const { values, positionals } = parseFlags(args, {
    host: { type: "string" },
    port: { type: "string" },
    data: { type: "string" },
    config: { type: "string" },
    http: { type: "boolean" },
    "http-host": { type: "string" },
    "http-port": { type: "string" },
    web: { type: "boolean" },
    "web-host": { type: "string" },
    "web-port": { type: "string" },
    "web-cert": { type: "string" },
    "web-key": { type: "string" },
    cluster: { type: "string" },
    "log-level": { type: "string" },
    "log-json": { type: "boolean" },
    "check-config": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "serve");
  if (values.help) return { config: defaultConfig(), values };
  if (positionals.length > 0) {
    throw new UsageError(`"parley serve" takes no argument "${positionals[0]}"`);
  }
  let config = defaultConfig();
  if (values.config) config = await loadConfigFile(config, values.config);
  const patch: Record<string, unknown> = {};
  if (values.host !== undefined) patch.host = values.host;
  if (values.data !== undefined) patch.dataDir = values.data;
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port)) throw new UsageError(`--port "${values.port}" is not a number`);
    patch.port = Number(values.port);
  }
  const http: Record<string, unknown> = {};
  if (values["http-host"] !== undefined) http.host = values["http-host"];
  if (values["http-port"] !== undefined) {
    if (!/^\d+$/.test(values["http-port"])) {
      throw new UsageError(`--http-port "${values["http-port"]}" is not a number`);
    }
    http.port = Number(values["http-port"]);
  }
  // Naming an HTTP address asks for the endpoint; having to add --http as well would surprise.
  if (values.http || Object.keys(http).length > 0) patch.http = { ...http, enabled: true };
  const web = webFlags(values);
  if (values.web || Object.keys(web).length > 0) patch.web = { ...web, enabled: true };
  if (values.cluster !== undefined) {
    try {
      patch.cluster = { nats: parseClusterUrls(values.cluster) };
    } catch (e) {
      throw new UsageError(`--cluster: ${(e as Error).message}`);
    }
  }
  config = applyConfig(config, patch, "Flags");
  if (values["log-level"] !== undefined && !LEVELS.includes(values["log-level"])) {
    throw new UsageError(`--log-level must be one of ${LEVELS.join(", ")}`);
  }
  return { config, values };
}

/** The web listener's settings named by flags (each of them asks for the listener). */
function webFlags(values: Record<string, unknown>): Record<string, unknown> {
  const web: Record<string, unknown> = {};
  const host = values["web-host"] as string | undefined;
  const port = values["web-port"] as string | undefined;
  const cert = values["web-cert"] as string | undefined;
  const key = values["web-key"] as string | undefined;
  if (host !== undefined) web.host = host;
  if (port !== undefined) {
    if (!/^\d+$/.test(port)) throw new UsageError(`--web-port "${port}" is not a number`);
    web.port = Number(port);
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("--web-cert and --web-key go together: a certificate needs its key");
  }
  if (cert !== undefined) web.tls = { cert, key };
  return web;
}

export async function serve(args: string[]): Promise<number> {
  const { config, values } = await serveConfig(args);
  if (values.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  if (values["check-config"]) {
    return await checkConfig(config, {
      configFile: values.config as string | undefined,
      logLevel: (values["log-level"] as string | undefined) ?? "info",
      logJson: values["log-json"] === true,
    });
  }
  const log = createLogger({
    level: (values["log-level"] as LogLevel | undefined) ?? "info",
    json: values["log-json"] === true,
  });
  // Listening for signals before the server starts: a SIGTERM that comes while it starts (or
  // right after it says it listens) must still end in a clean shutdown, not a killed process.
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let stopping = false;
  const stop = () => {
    stopping = true;
    if (server) void server.close();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    // OpenSSL is bound first; then the process gives up native code before it listens.
    chooseAesGcm(config.crypto.nativeAes);
    giveUpNativeCode();
    server = await startServer(config, log);
    if (stopping) void server.close();
    await server.finished;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
  }
  return 0;
}
