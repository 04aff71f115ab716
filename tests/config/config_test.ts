/** Config settings that changed shape keep reading older files. */

import assert from "node:assert/strict";
import { applyConfig, ConfigError, defaultConfig } from "../../src/config/config.ts";

Deno.test("crypto.nativeAes takes auto, require or off, and the older booleans as auto and off", () => {
  assert.equal(defaultConfig().crypto.nativeAes, "auto");
  const nativeAes = (value: unknown) =>
    applyConfig(defaultConfig(), { crypto: { nativeAes: value } }, "test").crypto.nativeAes;
  for (const mode of ["auto", "require", "off"]) assert.equal(nativeAes(mode), mode);
  assert.equal(nativeAes(true), "auto");
  assert.equal(nativeAes(false), "off");
  for (const bad of ["on", "", 1, null]) {
    assert.throws(() => nativeAes(bad), ConfigError, String(bad));
  }
  assert.throws(
    () => nativeAes("openssl"),
    {
      name: "ConfigError",
      message:
        'test: "crypto.nativeAes" must be one of "auto", "require", "off" (or true for "auto", false for "off")',
    },
  );
});
