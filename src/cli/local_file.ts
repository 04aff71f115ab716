/**
 * An image to send, read from disk: a regular file only, and never more of it than could be
 * sent. `/image /dev/zero` or a named pipe would otherwise be read into memory without end.
 */

/** More than any server takes in one frame: the read stops here whatever the limits say. */
export const READ_CAP_BYTES = 256 * 1024 * 1024;

/**
 * The file's bytes, or why it cannot be sent. A file over `max` bytes is read only to max + 1,
 * so that the size check that follows refuses it; `size` is its size on disk, for that refusal.
 */
export async function readImageFile(
  path: string,
  max: number,
): Promise<{ data: Uint8Array; size: number } | { problem: string }> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    return { problem: localProblem(path, e) };
  }
  if (info.isDirectory) return { problem: `${path} is a folder, not a file` };
  if (!info.isFile) return { problem: `${path} is not a file (a device or a pipe)` };
  const limit = Math.min(max, READ_CAP_BYTES) + 1;
  // Refused by its size alone: nothing to read.
  if (info.size >= limit) return { data: new Uint8Array(0), size: info.size };
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    return { problem: localProblem(path, e) };
  }
  try {
    const data = new Uint8Array(Math.min(limit, info.size + 1));
    let filled = 0;
    while (filled < data.length) {
      const n = await file.read(data.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return { data: data.subarray(0, filled), size: Math.max(info.size, filled) };
  } catch (e) {
    return { problem: localProblem(path, e) };
  } finally {
    file.close();
  }
}

/** A local file that cannot be read, in a sentence. */
export function localProblem(path: string, e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return `No such file: ${path}`;
  if (e instanceof Deno.errors.PermissionDenied) return `Not allowed to read ${path}`;
  if (e instanceof Deno.errors.IsADirectory) return `${path} is a folder, not a file`;
  return `Cannot read ${path}: ${(e as Error).message}`;
}
