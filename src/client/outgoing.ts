/**
 * Checks a client makes before sending what it knows the server would refuse. A refusal costs a
 * round trip at best; an image over the frame limit costs the connection (the server closes it),
 * so the client must never send one.
 */

/** The server's limits as INITIALIZE announces them (PROTOCOL.md section 8.8). */
export interface ServerLimits {
  max_frame_bytes: number;
  max_text_bytes: number;
  max_image_bytes: number;
  max_file_bytes: number;
}

/** The documented defaults (config.json), used until a server has announced its own. */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  max_frame_bytes: 4194304,
  max_text_bytes: 16384,
  max_image_bytes: 2097152,
  max_file_bytes: 4294967296,
});

/**
 * Room a SEND takes in its frame besides the image bytes: message header, id, target, type and a
 * name of up to 255 characters (4 bytes each in UTF-8) with their keys. 2 KiB covers it.
 */
export const SEND_OVERHEAD_BYTES = 2048;

/** Image formats recognised by their first bytes. */
const MAGIC: [string, (b: Uint8Array) => boolean][] = [
  ["PNG", (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
  ["JPEG", (b) => startsWith(b, [0xff, 0xd8, 0xff])],
  ["GIF", (b) => startsWith(b, [0x47, 0x49, 0x46, 0x38]) && (b[4] === 0x37 || b[4] === 0x39)],
  // "RIFF", a 4-byte size, then "WEBP".
  [
    "WebP",
    (b) =>
      startsWith(b, [0x52, 0x49, 0x46, 0x46]) &&
      startsWith(b.subarray(8), [0x57, 0x45, 0x42, 0x50]),
  ],
];

function startsWith(b: Uint8Array, prefix: number[]): boolean {
  return b.length >= prefix.length && prefix.every((x, i) => b[i] === x);
}

/** "PNG", "JPEG", "GIF" or "WebP" by the first bytes, or null for anything else. */
export function imageFormat(data: Uint8Array): string | null {
  for (const [name, test] of MAGIC) if (test(data)) return name;
  return null;
}

/** "2.0 MiB (2097152 bytes)": a limit, readable and exact. */
function size(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const unit = n < 1024 * 1024 ? [1024, "KiB"] : n < 1024 ** 3 ? [1024 * 1024, "MiB"] : [
    1024 ** 3,
    "GiB",
  ];
  return `${(n / (unit[0] as number)).toFixed(1)} ${unit[1]} (${n} bytes)`;
}

/** Why the server would refuse this text, as a sentence, or null. */
export function textProblem(text: string, limits: ServerLimits): string | null {
  if (text.trim() === "") return "Nothing to send: the message is empty";
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > limits.max_text_bytes) {
    return `Text messages are limited to ${limits.max_text_bytes} bytes on this server; ` +
      `this one has ${bytes}`;
  }
  return null;
}

/** Why the server would refuse (or drop the connection for) this image, or null. */
export function imageProblem(
  data: Uint8Array,
  name: string,
  limits: ServerLimits,
  /** The image's whole size, where only its start was read. */
  bytes = data.length,
): string | null {
  if (bytes === 0) return `Nothing to send: "${name}" is empty`;
  const max = maxImageBytes(limits);
  if (bytes > max) {
    return `Images are limited to ${size(max)} on this server; "${name}" has ${size(bytes)}`;
  }
  if (imageFormat(data) === null) return `"${name}" is not an image (PNG, JPEG, GIF or WebP)`;
  return null;
}

/** The largest image the server takes: its own limit, within one frame with the SEND around it. */
export function maxImageBytes(limits: ServerLimits): number {
  return Math.min(limits.max_image_bytes, limits.max_frame_bytes - SEND_OVERHEAD_BYTES);
}

/** Why the server would refuse to relay a file of this size, or null. */
export function fileProblem(bytes: number, name: string, limits: ServerLimits): string | null {
  if (bytes > limits.max_file_bytes) {
    return `Files are limited to ${size(limits.max_file_bytes)} on this server; "${name}" has ${
      size(bytes)
    }`;
  }
  return null;
}
