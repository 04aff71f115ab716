/**
 * Token rotation on a real KV file: concurrent RESUMEs share group commits, and none resolves
 * (so no LG_OK goes out) before the commit holding its new token has ended; a store opened again
 * on the file resumes with every token handed out.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256 } from "../../src/crypto/keys.ts";
import { GroupCommitter } from "../../src/store/committer.ts";
import { tokenKey } from "../../src/store/kv_keys.ts";
import { KvTokenStore } from "../../src/store/tokens.ts";
import { routedKv } from "../helpers/kv.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const FAMILIES = 20;

type Commit = () => Promise<Deno.KvCommitResult | Deno.KvCommitError>;

Deno.test("concurrent RESUMEs share commits and resolve only once theirs is durable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-token-commits-" });
  const path = join(dir, "test.kv");
  const real = await Deno.openKv(path);
  // Commits that write a token entry wait here while `hold` is set.
  let hold = false;
  const held: (() => void)[] = [];
  const kv = routedKv(real, (key) => key[0] === tokenKey("")[0], (commit: Commit) => {
    if (!hold) return commit();
    return new Promise<void>((r) => held.push(r)).then(commit);
  });
  const committer = new GroupCommitter(kv);
  const tokens = new KvTokenStore(kv, committer);
  try {
    const issued = [];
    for (let i = 0; i < FAMILIES; i++) {
      issued.push(await tokens.issue(`user${i}`, DAY_MS, 5, { rotates: true }));
    }
    hold = true;
    const before = committer.commits;
    let resolved = 0;
    const resumes = issued.map((t) =>
      tokens.resume(t.token, 60_000).then((outcome) => {
        resolved++;
        return outcome;
      })
    );
    // Every rotation is read from the cache and queued at once; the first commit is held.
    while (held.length === 0) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(resolved, 0, "no RESUME resolves while its commit has not ended");
    hold = false;
    for (const release of held.splice(0)) release();
    const outcomes = await Promise.all(resumes);
    const commits = committer.commits - before;
    assert.ok(commits >= 1 && commits <= 2, `${FAMILIES} RESUMEs took ${commits} commits`);
    // Each new token's entry is in the file, seen through a handle of its own.
    const other = await Deno.openKv(path);
    try {
      for (const outcome of outcomes) {
        assert.equal(outcome.kind, "ok");
        if (outcome.kind !== "ok") continue;
        const entry = await other.get(tokenKey(sha256(outcome.token).toHex()));
        assert.equal((entry.value as { family: string } | null)?.family, outcome.family.id);
      }
    } finally {
      other.close();
    }
    await committer.close();
    real.close();
    // A store opened afresh on the file (no cache) takes every rotated token.
    const again = await Deno.openKv(path);
    try {
      const freshCommitter = new GroupCommitter(again);
      const fresh = new KvTokenStore(again, freshCommitter);
      for (const outcome of outcomes) {
        if (outcome.kind !== "ok") continue;
        assert.equal((await fresh.resume(outcome.token, 60_000)).kind, "ok");
      }
      await freshCommitter.close();
    } finally {
      again.close();
    }
  } finally {
    await committer.close().catch(() => {});
    try {
      real.close();
    } catch { /* closed above */ }
    await Deno.remove(dir, { recursive: true });
  }
});
