/** The store's schema version on real KV files: written, accepted, upgraded, refused. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { HASH } from "../helpers/password_hash.ts";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import {
  checkSchema,
  type Migration,
  prepareSchema,
  SCHEMA_VERSION,
  storeIn,
  StoreSchemaError,
} from "../../src/store/schema.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-schema-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes entries straight into the KV file of `dir`, as an older or newer Parley would have. */
async function writeRaw(dir: string, entries: [Deno.KvKey, unknown][]): Promise<void> {
  const kv = await Deno.openKv(join(dir, KV_FILE));
  try {
    for (const [key, value] of entries) await kv.set(key, value);
  } finally {
    kv.close();
  }
}

/** Every entry of the KV file with its versionstamp: any write changes it. */
async function snapshot(dir: string): Promise<string[]> {
  const kv = await Deno.openKv(join(dir, KV_FILE));
  try {
    const out: string[] = [];
    for await (const e of kv.list({ prefix: [] })) {
      out.push(`${JSON.stringify(e.key)}@${e.versionstamp}`);
    }
    return out;
  } finally {
    kv.close();
  }
}

async function versionIn(dir: string): Promise<unknown> {
  const kv = await Deno.openKv(join(dir, KV_FILE));
  try {
    return (await kv.get(["meta", "schema"])).value;
  } finally {
    kv.close();
  }
}

const ANN: [Deno.KvKey, unknown] = [["user", "ann"], {
  name: "Ann",
  password: HASH,
  created: new Date(),
}];

Deno.test("a new store is written with the current schema version", () =>
  withDir(async (dir) => {
    assert.equal(SCHEMA_VERSION, 1);
    const store = await openKvStore(dir);
    await store.close();
    assert.equal(await versionIn(dir), SCHEMA_VERSION);
  }));

Deno.test("a store from before versions, with data, opens as version 1 and gets it written", () =>
  withDir(async (dir) => {
    await writeRaw(dir, [ANN]);
    const store = await openKvStore(dir);
    try {
      assert.equal((await store.users.get("ann"))?.name, "Ann");
    } finally {
      await store.close();
    }
    assert.equal(await versionIn(dir), 1);
  }));

Deno.test("a store of a newer version is refused, names both versions, and stays untouched", () =>
  withDir(async (dir) => {
    await writeRaw(dir, [[["meta", "schema"], SCHEMA_VERSION + 1], ANN]);
    const before = await snapshot(dir);
    const sentence = `The store in "${dir}" is schema version ${SCHEMA_VERSION + 1}, from a ` +
      `newer Parley (this one reads version ${SCHEMA_VERSION}); run the newer Parley on it`;
    await assert.rejects(openKvStore(dir), { name: "StoreSchemaError", message: sentence });
    assert.deepEqual(await snapshot(dir), before);
    // The data dir's lock went with the refusal: the same answer again, not "busy".
    await assert.rejects(openKvStore(dir), { message: sentence });
  }));

Deno.test("a damaged schema version is refused", () =>
  withDir(async (dir) => {
    await writeRaw(dir, [[["meta", "schema"], "one"], ANN]);
    await assert.rejects(openKvStore(dir), {
      name: "StoreSchemaError",
      message: `The store's schema version (one) is damaged; restore the store from a backup`,
    });
  }));

Deno.test("an older store is upgraded step by step, and a step cut off runs again", () =>
  withDir(async (dir) => {
    await writeRaw(dir, [ANN]);
    const ran: string[] = [];
    let failOnce = true;
    const migrations: Migration[] = [
      {
        summary: "to 2",
        run: async (kv) => {
          ran.push("to 2");
          await kv.set(["step"], 2);
        },
      },
      {
        summary: "to 3",
        run: async (kv) => {
          ran.push("to 3");
          if (failOnce) {
            failOnce = false;
            throw new Error("crash");
          }
          await kv.set(["step"], 3);
        },
      },
    ];
    const kv = await Deno.openKv(join(dir, KV_FILE));
    try {
      await assert.rejects(prepareSchema(kv, storeIn(dir), migrations), /crash/);
      assert.equal((await kv.get(["meta", "schema"])).value, 2);
      await prepareSchema(kv, storeIn(dir), migrations);
      assert.deepEqual(ran, ["to 2", "to 3", "to 3"]);
      assert.equal((await kv.get(["meta", "schema"])).value, 3);
      assert.equal((await kv.get(["step"])).value, 3);
      // Current now: nothing runs again.
      await prepareSchema(kv, storeIn(dir), migrations);
      assert.equal(ran.length, 3);
      // A reader of version 3 takes it; a reader that knows version 4 sends it to the server.
      await checkSchema(kv, storeIn(dir), { current: 3 });
      await assert.rejects(
        checkSchema(kv, storeIn(dir), { current: 4 }),
        (e) =>
          e instanceof StoreSchemaError &&
          e.message ===
            `The store in "${dir}" is schema version 3, older than this Parley's 4; start ` +
              `"parley serve" on it once to upgrade it`,
      );
      await checkSchema(kv, storeIn(dir), { current: 4, older: true });
      await assert.rejects(checkSchema(kv, storeIn(dir), { current: 2 }), /newer Parley/);
    } finally {
      kv.close();
    }
  }));
