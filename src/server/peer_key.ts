/**
 * The key under which per-address limits count a peer. An IPv4 address is its own key. An IPv6
 * host usually holds a whole /64 (SLAAC, privacy addresses) and can pick any address in it, so
 * keying on the exact address would give one client 2^64 keys: an IPv6 peer counts as its
 * prefix (`limits.ipv6PrefixBits`, 64 by default) instead.
 */

/** Groups of 16 bits in an IPv6 address. */
const GROUPS = 8;

/** "2001:db8:1:2:3:4:5:6" with prefix 64 → "2001:db8:1:2::/64"; IPv4 (mapped or not) as is. */
export function peerKey(hostname: string, ipv6PrefixBits: number): string {
  if (!Number.isInteger(ipv6PrefixBits) || ipv6PrefixBits < 1 || ipv6PrefixBits > 128) {
    throw new RangeError(`An IPv6 prefix is 1 to 128 bits, not ${ipv6PrefixBits}`);
  }
  const host = hostname.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (!host.includes(":")) return host;
  const groups = parseIpv6(host);
  if (groups === null) return host; // not an address we understand: the exact text is the key
  // An IPv4 client on a dual-stack socket (::ffff:a.b.c.d) is that IPv4 address.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
  }
  for (let i = 0; i < GROUPS; i++) {
    const keep = Math.min(16, Math.max(0, ipv6PrefixBits - 16 * i));
    groups[i] &= keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
  }
  return `${formatIpv6(groups)}/${ipv6PrefixBits}`;
}

/** The eight groups of an IPv6 address, or null if `text` is not one. */
function parseIpv6(text: string): number[] | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const side = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = p.split(".").map(Number);
        if (v4.length !== 4 || v4.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) {
          return null;
        }
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = side(halves[0]);
  const tail = halves.length === 2 ? side(halves[1]) : [];
  if (head === null || tail === null) return null;
  const missing = GROUPS - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  return [...head, ...new Array(missing).fill(0), ...tail];
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of two or more zero groups as "::". */
function formatIpv6(groups: number[]): string {
  let bestAt = -1, bestLength = 1;
  for (let i = 0; i < GROUPS;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < GROUPS && groups[j] === 0) j++;
    if (j - i > bestLength) [bestAt, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(":");
  return `${hex.slice(0, bestAt).join(":")}::${hex.slice(bestAt + bestLength).join(":")}`;
}
