/** Registration by invitation through the real CLI: `parley admin invite`, then `connect --invite`. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fastConfig, run, ServerProcess } from "../helpers/cli.ts";

Deno.test("connect --register needs --invite on an invite-only server; a code from admin invite works once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-cli-" });
  const config = await fastConfig(dir);
  const settings = JSON.parse(await Deno.readTextFile(config));
  settings.accounts.registration = "invite";
  await Deno.writeTextFile(config, JSON.stringify(settings));
  const data = join(dir, "data");
  const server = await ServerProcess.start(data, config);
  try {
    const env = {
      PARLEY_CONFIG_DIR: join(dir, "client"),
      PARLEY_PASSWORD: "s3cret-pass",
      PARLEY_ACCEPT_NEW_KEY: "1",
    };
    const refused = await run(["connect", server.addr, "--user", "dana", "--register"], { env });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /This server takes new accounts by invitation only/);

    const made = await run(["admin", "invite", "--data", data, "--config", config]);
    assert.equal(made.code, 0, made.stderr);
    const code = made.stdout.trim();
    assert.match(made.stderr, /^One code, valid until [\d-]+ [\d:]+ UTC\.\n$/);

    const args = ["connect", server.addr, "--user", "dana", "--register", "--invite", code];
    const ok = await run(args, { env, input: "/logout\n" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Registered dana\./);
    const again = await run([...args.slice(0, 3), "erin", ...args.slice(4)], { env });
    assert.match(again.stderr, /The invite code is unknown, used or expired/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
