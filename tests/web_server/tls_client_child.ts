/**
 * Run by tls_test.ts in a child process given the test's CA (`deno run --cert ca.pem`): a
 * ParleyClient over Deno's WebSocket to a wss:// URL registers, logs in and sends one message.
 * Args: the web origin (https://127.0.0.1:PORT), the username, the recipient.
 */

import { ParleyClient } from "../../src/client/client.ts";
import { dial } from "../../src/transport/websocket_client.ts";

const [origin, name, to] = Deno.args;
const url = new URL(origin);
const client = await ParleyClient.connect({
  host: url.hostname,
  port: Number(url.port),
  knownHosts: null,
  dial: dial(`wss://${url.host}/ws`, {
    open: (u) => new WebSocket(u, { headers: { origin } } as never),
  }),
});
await client.register(name, "password-" + name);
await client.login(name, "password-" + name);
await client.sendText({ user: to }, `over TLS from ${name}`);
console.log(client.fingerprint);
client.close();
await client.closed;
