/** Runs the real CLI (main.ts) as a child process, the way a user would. */

import { fileURLToPath } from "node:url";
import { V8_FLAGS_ARG } from "../../src/server/v8_flags.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export function parley(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: "piped" | "null"; permissions?: string[] } = {},
) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...opts.permissions ?? ["--allow-all"],
      "--quiet",
      V8_FLAGS_ARG,
      "main.ts",
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: opts.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `code` in a Deno child (`deno eval`) with `args` before it; its stdout, or a failure. */
export async function denoEval(args: string[], code: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...args, code],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (out.code !== 0) throw new Error(`deno eval failed: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout).trim();
}

/** Runs to completion, optionally feeding `input` on stdin. */
export async function run(
  args: string[],
  opts: { env?: Record<string, string>; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = parley(args, { env: opts.env, stdin: opts.input === undefined ? "null" : "piped" })
    .spawn();
  if (opts.input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.input));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Collects a child's stream as text and lets a test wait for a pattern in it. */
export class Output {
  text = "";
  readonly done: Promise<void>;
  #waiters: (() => void)[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.text += chunk;
        for (const w of this.#waiters.splice(0)) w();
      }
      for (const w of this.#waiters.splice(0)) w();
    })();
  }

  /** Resolves with the first match of `pattern`, or throws after `ms`. */
  async waitFor(pattern: RegExp, ms = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    while (true) {
      const m = this.text.match(pattern);
      if (m) return m;
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${pattern}; output so far:\n${this.text}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#waiters.push(r)),
        this.done,
        new Promise((r) => timer = setTimeout(r, 100)),
      ]);
      clearTimeout(timer);
    }
  }
}

/** A `parley serve` child on a free loopback port with a fast-scrypt config file. */
export class ServerProcess {
  private constructor(
    readonly child: Deno.ChildProcess,
    readonly out: Output,
    readonly port: number,
    readonly fingerprint: string,
  ) {}

  static async start(
    dataDir: string,
    configFile: string,
    port = 0,
    extra: string[] = [],
    permissions?: string[],
  ): Promise<ServerProcess> {
    const child = parley([
      "serve",
      ...extra,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--data",
      dataDir,
      "--config",
      configFile,
    ], { permissions }).spawn();
    const out = new Output(child.stdout);
    void new Output(child.stderr);
    const m = await out.waitFor(
      /server\.listening addr=127\.0\.0\.1:(\d+) fingerprint=(\S+)|"event":"server\.listening","addr":"127\.0\.0\.1:(\d+)","fingerprint":"([^"]+)"/,
    );
    return new ServerProcess(child, out, Number(m[1] ?? m[3]), m[2] ?? m[4]);
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Sends `signal` and waits for the exit status. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
    const status = await this.child.status;
    await this.out.done;
    return status;
  }
}

/** Writes a config file that keeps scrypt fast for tests; `extra` adds top-level sections. */
export async function fastConfig(
  dir: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      accounts: {
        scrypt: { N: 1024, r: 8, p: 1 },
        registerPerIp: 1_000_000,
        registerPerHour: 1_000_000,
      },
      limits: { requestRate: 1_000_000, requestBurst: 1_000_000 },
      ...extra,
    }),
  );
  return path;
}

/** An interactive `parley connect` child: type lines, wait for output. */
export class ChatProcess {
  readonly out: Output;
  readonly err: Output;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  private constructor(readonly child: Deno.ChildProcess) {
    this.out = new Output(child.stdout);
    this.err = new Output(child.stderr);
    this.#writer = child.stdin.getWriter();
  }

  static start(args: string[], env: Record<string, string>): ChatProcess {
    return new ChatProcess(parley(args, { env, stdin: "piped" }).spawn());
  }

  async type(...lines: string[]): Promise<void> {
    for (const line of lines) await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Closes stdin and waits for the exit status. */
  async finish(): Promise<Deno.CommandStatus> {
    await this.#writer.close().catch(() => {});
    const status = await this.child.status;
    await Promise.all([this.out.done, this.err.done]);
    return status;
  }

  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // gone already
    }
    await this.finish();
  }
}

/**
 * A `parley` child on a pseudo-terminal (util-linux `script`), so that stdin and stdout are a
 * TTY: raw-mode line editing, hidden passwords, prompts. Type keys; read the screen.
 */
export class TtyProcess {
  readonly out: Output;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  private constructor(readonly child: Deno.ChildProcess) {
    this.out = new Output(child.stdout);
    void new Output(child.stderr);
    this.#writer = child.stdin.getWriter();
  }

  static start(args: string[], env: Record<string, string>): TtyProcess {
    const command = [Deno.execPath(), "run", "--allow-all", "--quiet", "main.ts", ...args]
      .map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
    const child = new Deno.Command("script", {
      // -e: script exits with the child's status; the size keeps lines from wrapping.
      args: ["-qfec", `stty cols 200 rows 50; exec ${command}`, "/dev/null"],
      cwd: ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new TtyProcess(child);
  }

  /** Sends keys as typed: "\r" is Enter, "\x03" Ctrl-C, "\x04" Ctrl-D, "\x7f" Backspace. */
  async keys(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /** The screen's lines as a terminal shows them (see screenLines). */
  screen(): string[] {
    return screenLines(this.out.text);
  }

  async finish(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await this.#writer.close().catch(() => {});
    await this.out.done;
    return status;
  }

  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // gone already
    }
    await this.finish().catch(() => {});
  }
}

/**
 * What a terminal would show for `text`: enough of a VT100 for the line editor (carriage
 * return, line feed, cursor up/right/left, erase line), so that a test sees redrawn lines once.
 */
export function screenLines(text: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  // deno-lint-ignore no-control-regex
  const tokens = text.match(/\x1b\[[0-9;]*[A-Za-z]|[\s\S]/gu) ?? [];
  for (const t of tokens) {
    // deno-lint-ignore no-control-regex
    const csi = /^\x1b\[([0-9;]*)([A-Za-z])$/.exec(t);
    if (csi) {
      const n = Number(csi[1] || 1);
      if (csi[2] === "A") row = Math.max(0, row - n);
      else if (csi[2] === "B") row += n;
      else if (csi[2] === "C") col += n;
      else if (csi[2] === "D") col = Math.max(0, col - n);
      else if (csi[2] === "K") lines[row] = lines[row]?.slice(0, csi[1] === "2" ? 0 : col) ?? [];
      while (lines.length <= row) lines.push([]);
      continue;
    }
    if (t === "\r") col = 0;
    else if (t === "\n") {
      row++;
      while (lines.length <= row) lines.push([]);
    } else if (t >= " ") {
      const line = lines[row];
      while (line.length < col) line.push(" ");
      line[col++] = t;
    }
  }
  return lines.map((l) => l.join("").trimEnd());
}
