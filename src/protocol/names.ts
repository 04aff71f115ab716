/**
 * Usernames: 2 to 32 characters of ASCII letters, digits, "_", "." and "-", starting with a
 * letter or digit; unique regardless of case. The safe set keeps names unambiguous in a
 * terminal (no look-alike Unicode, no spaces, no control characters).
 */

export const USERNAME_MIN = 2;
export const USERNAME_MAX = 32;
const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Returns why a username is not acceptable, or null when it is. */
export function usernameProblem(name: string): string | null {
  if (name.length < USERNAME_MIN || name.length > USERNAME_MAX) {
    return `Usernames are ${USERNAME_MIN} to ${USERNAME_MAX} characters long`;
  }
  if (!USERNAME_PATTERN.test(name)) {
    return 'Usernames use only letters, digits, "_", "." and "-", and start with a letter or digit';
  }
  return null;
}

/** The case-insensitive identity of a username. */
export function usernameKey(name: string): string {
  return name.toLowerCase();
}

/**
 * The look-alike key of a username: two names with the same key are too easily mistaken for
 * each other in a terminal, and REGISTER refuses the second. Lowercase, then "_", "." and "-"
 * dropped, "0" read as "o", "1" and "i" as "l", "rn" as "m" and "vv" as "w" ("a1ice",
 * "aIice", "al.ice" and "alice" are one key; "rnary" and "mary" too).
 */
export function usernameLookalikeKey(name: string): string {
  const key = usernameKey(name)
    .replace(/[_.-]/g, "")
    .replace(/0/g, "o")
    .replace(/[1i]/g, "l")
    .replace(/rn/g, "m")
    .replace(/vv/g, "w");
  if (/[_.\-01i]|rn|vv/.test(key)) throw new Error(`A look-alike key is not canonical: "${key}"`);
  return key;
}
