/**
 * The client library as Deno code imports it: core.ts with Deno's platform installed (TCP,
 * node:crypto or OpenSSL). The web app imports core.ts and installs its own.
 */

import { nativePlatform } from "./native_platform.ts";
import { useClientPlatform } from "./platform.ts";

useClientPlatform(nativePlatform);

export * from "./core.ts";
