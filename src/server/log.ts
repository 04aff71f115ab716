/**
 * Structured logs: a level, an event name and fields. Text lines by default, JSON lines on
 * request. Callers pass no passwords, keys or message contents.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  json?: boolean;
  /** Where lines go; stdout by default. */
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = ORDER[opts.level ?? "info"];
  const write = opts.write ??
    ((line: string) => Deno.stdout.writeSync(encoder.encode(line + "\n")));
  const emit = (level: LogLevel, event: string, fields: LogFields = {}) => {
    if (ORDER[level] < min) return;
    const time = new Date().toISOString();
    if (opts.json) {
      write(JSON.stringify({ time, level, event, ...fields }));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${event}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const text = String(v);
      line += ` ${k}=${/[\s"=]/.test(text) || text === "" ? JSON.stringify(text) : text}`;
    }
    write(line);
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
  };
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = createLogger({ write: () => {} });
