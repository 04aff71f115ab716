/**
 * A real `parley serve` child on a free loopback port, for the measurement and attack scripts:
 * started with a config file and a data dir, ready once its log says where it listens.
 */

import { V8_FLAGS_ARG } from "../src/server/v8_flags.ts";

const ROOT = new URL("../", import.meta.url).pathname;

export interface ServerChild {
  process: Deno.ChildProcess;
  port: number;
  /** The /metrics port, or 0 when the config leaves HTTP off. */
  httpPort: number;
  /** The child's resident memory, in bytes. */
  rss(): number;
  stop(): Promise<void>;
}

/** Starts the server; `onLog` hears the log lines that come after it listens. */
export async function startServerChild(
  config: string,
  dataDir: string,
  opts: { http?: boolean; onLog?: (line: string) => void } = {},
): Promise<ServerChild> {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      V8_FLAGS_ARG, // as `deno task start` runs it
      "main.ts",
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data",
      dataDir,
      "--config",
      config,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const listening = (what: string) =>
    Number(new RegExp(`${what}\\.listening addr=127\\.0\\.0\\.1:(\\d+)`).exec(log)?.[1] ?? 0);
  while (!listening("server") || (opts.http && !listening("http"))) {
    const { value, done } = await reader.read();
    if (done) throw new Error("server ended: " + log);
    log += value;
  }
  void (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const line of value.split("\n")) if (line) opts.onLog?.(line);
    }
  })();
  return {
    process,
    port: listening("server"),
    httpPort: listening("http"),
    rss: () =>
      Number(/VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${process.pid}/status`))![1]) *
      1024,
    stop: async () => {
      process.kill("SIGTERM");
      await process.status;
    },
  };
}
