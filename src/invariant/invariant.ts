/**
 * Checked invariants: `invariant(ok, what)` states a condition the code relies on. A broken one
 * is a bug. By default it throws an InvariantError, so that tests fail where it broke; a server
 * in production installs a handler that logs it, counts it and goes on (a chat server that stops
 * for a miscount serves no one). Depends on nothing, so that any layer may use it.
 */

/** A stated invariant did not hold: a bug in the code that stated it. */
export class InvariantError extends Error {
  override name = "InvariantError";
  constructor(what: string) {
    super(`Invariant broken: ${what}`);
  }
}

/** Told of each broken invariant; `what` names it. */
export type InvariantHandler = (what: string) => void;

const strict: InvariantHandler = (what) => {
  throw new InvariantError(what);
};

let handler: InvariantHandler = strict;

/**
 * Reports `what` as broken unless `ok`. Under a lenient handler the caller goes on, so code
 * after a check must not rely on it to stay safe (it keeps its own bounds where it needs them).
 * `what` should be a constant: the call is on hot paths, and it is read only when broken.
 */
export function invariant(ok: boolean, what: string): void {
  if (!ok) handler(what);
}

/**
 * Sends broken invariants to `h` instead of throwing (null: throw again). Returns a function
 * that puts back the handler it replaced.
 */
export function onInvariantBroken(h: InvariantHandler | null): () => void {
  const before = handler;
  handler = h ?? strict;
  return () => {
    handler = before;
  };
}
