/**
 * One process at a time may write to a data dir: the server, which keeps users, inbox counts
 * and groups cached in memory (a write from elsewhere would go unseen and then be overwritten),
 * or an admin command that changes the store. The writer holds an exclusive OS lock (flock) on
 * `parley.lock` for as long as it runs. The OS drops the lock when the process ends, however it
 * ends, so a crash leaves no stale lock behind. The file also names its holder, for the message
 * the second process prints.
 */

import { join } from "node:path";

export const LOCK_FILE = "parley.lock";

/** Who holds a data dir, as written into the lock file. */
export interface LockHolder {
  pid: number | null;
  /** The parley command that holds it: "serve", "admin restore", … */
  command: string | null;
}

/** The data dir is held by another process. */
export class DataDirBusyError extends Error {
  override name = "DataDirBusyError";

  constructor(readonly dataDir: string, readonly holder: LockHolder) {
    const pid = holder.pid === null ? "pid unknown" : `pid ${holder.pid}`;
    super(
      holder.command === "serve" || holder.command === null
        ? `The server is running on the data dir "${dataDir}" (${pid}); stop it first`
        : `"parley ${holder.command}" is working on the data dir "${dataDir}" (${pid}); ` +
          `wait for it to finish`,
    );
  }
}

export interface DataDirLock {
  /** Lets the next process in. */
  release(): void;
}

/**
 * Takes the data dir (which must exist) for `command`, or throws DataDirBusyError at once
 * when another process has it: a second writer waiting silently would look like a hang.
 */
export async function lockDataDir(dataDir: string, command: string): Promise<DataDirLock> {
  const file = await Deno.open(join(dataDir, LOCK_FILE), {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  try {
    if (!await file.tryLock(true)) throw new DataDirBusyError(dataDir, await readHolder(file));
    await file.truncate(0);
    const line = new TextEncoder().encode(`${Deno.pid} ${command}\n`);
    for (let at = 0; at < line.length;) at += await file.write(line.subarray(at));
  } catch (e) {
    file.close();
    throw e;
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      // Closing the file is what drops the lock; the file stays for the next holder.
      file.close();
    },
  };
}

async function readHolder(file: Deno.FsFile): Promise<LockHolder> {
  const buf = new Uint8Array(256);
  const n = await file.read(buf) ?? 0;
  // The holder writes its line just after locking, so the file can still be empty.
  const m = /^(\d+) (.+)\n/.exec(new TextDecoder().decode(buf.subarray(0, n)));
  return m ? { pid: Number(m[1]), command: m[2] } : { pid: null, command: null };
}
