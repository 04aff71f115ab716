/** SessionRegistry without sockets: membership, its invariants, and the shutdown notice. */

import assert from "node:assert/strict";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import type { Session } from "../../src/server/session.ts";
import { SessionRegistry } from "../../src/server/session_registry.ts";

/** What the registry uses of a session: closeWith, recorded. */
function fakeSession(): { session: Session; notices: [number | null, Value, number][] } {
  const notices: [number | null, Value, number][] = [];
  const session = {
    closeWith(type: number | null, body: Value, waitMs: number): Promise<void> {
      notices.push([type, body, waitMs]);
      return Promise.resolve();
    },
  } as unknown as Session;
  return { session, notices };
}

Deno.test("SessionRegistry: holds what was added until removed, once each", () => {
  const r = new SessionRegistry();
  const a = fakeSession().session;
  const b = fakeSession().session;
  r.add(a);
  r.add(b);
  assert.equal(r.size, 2);
  assert.deepEqual([...r], [a, b]);
  assert.throws(() => r.add(a), /invariant broken/);
  r.remove(a);
  assert.deepEqual([...r], [b]);
  assert.throws(() => r.remove(a), /invariant broken/);
});

Deno.test("SessionRegistry: notifyShutdown sends SHUTTING_DOWN to every session and waits for each", async () => {
  const r = new SessionRegistry();
  const fakes = [fakeSession(), fakeSession()];
  for (const f of fakes) r.add(f.session);
  let released!: () => void;
  const slow = fakeSession();
  const slowSession = slow.session as unknown as { closeWith: (...a: unknown[]) => Promise<void> };
  slowSession.closeWith = () => new Promise<void>((resolve) => released = resolve);
  r.add(slow.session);
  let done = false;
  const notified = r.notifyShutdown().then(() => done = true);
  await Promise.resolve();
  for (const f of fakes) {
    assert.equal(f.notices.length, 1);
    const [type, body, waitMs] = f.notices[0];
    assert.equal(type, MsgType.GENERAL_ERROR);
    assert.equal((body as { code: number }).code, ErrorCode.SHUTTING_DOWN);
    assert.equal(waitMs, 1000);
  }
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(!done, "not done while one notice is still leaving");
  released();
  await notified;
  assert.ok(done);
});
