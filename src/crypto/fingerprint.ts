/** How users see a server key: pure, so that the browser's client formats it as the terminal's. */

/** "SHA256:" and the unpadded base64 of the key's SHA-256 digest, like SSH. */
export function formatFingerprint(digest: Uint8Array): string {
  if (digest.length !== 32) throw new RangeError("A fingerprint is made from a SHA-256 digest");
  return "SHA256:" + digest.toBase64({ omitPadding: true });
}
