/**
 * The browser's client platform (WebCrypto handshake and cipher, WebChannel, SHA-256 by
 * crypto.subtle) against a real server over TCP on 127.0.0.1: Deno has the browser's WebCrypto,
 * so the same ParleyClient runs here on what a page would use, only dialled over TCP.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ParleyClient } from "../../src/client/client.ts";
import { Link } from "../../src/client/link.ts";
import type { ClientPlatform } from "../../src/client/platform.ts";
import { BufferingHasher, webPlatform, webSha256 } from "../../src/client/web_platform.ts";
import { formatFingerprint } from "../../src/crypto/fingerprint.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Message } from "../../src/protocol/message_codec.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { WebChannel } from "../../src/transport/web_channel.ts";
import { initiateWebHandshake } from "../../src/transport/web_handshake_io.ts";
import { pattern, sha } from "../helpers/content.ts";
import { type TestServer, withServer } from "../helpers/server.ts";

const tcpDial = async (host: string, port: number) =>
  new TcpTransport(await Deno.connect({ hostname: host, port }));

/** A counted platform: every connection it secures is one the web code handled. */
function countedWebPlatform(): ClientPlatform & { secured: number } {
  const base = webPlatform(tcpDial);
  const counted = {
    ...base,
    secured: 0,
    async secure(...args: Parameters<ClientPlatform["secure"]>) {
      const s = await base.secure(...args);
      assert.ok(s.channel instanceof WebChannel, "the web platform's channel is a WebChannel");
      counted.secured++;
      return s;
    },
  };
  return counted;
}

async function webUser(t: TestServer, platform: ClientPlatform, name: string) {
  const c = await t.connect({ platform });
  await c.register(name, `password-${name}`);
  await c.login(name, `password-${name}`);
  return c;
}

Deno.test("the web handshake with a real server gives the server's key and a working channel", () =>
  withServer(async (t) => {
    const transport = await tcpDial("127.0.0.1", t.port);
    const shaken = await initiateWebHandshake(transport, 1 << 20);
    assert.equal(formatFingerprint(await webSha256(shaken.serverIdentity)), t.server.fingerprint);
    const channel = await WebChannel.create(transport, shaken.keys, shaken.decoder, {
      maxFrameBytes: 1 << 20,
      maxOutboundBytes: 1 << 24,
      maxDepth: 16,
    });
    const replies: Message[] = [];
    const done = channel.receive((d) => void replies.push(...d.messages));
    channel.send(MsgType.PING, 41, null);
    channel.send(MsgType.PING, 42, null);
    await channel.flush();
    for (let i = 0; i < 400 && replies.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(replies.map((m) => [m.type, m.id]), [[MsgType.PONG, 41], [MsgType.PONG, 42]]);
    await channel.finish(1000, 1000);
    await done;
    channel.close();
  }));

Deno.test("the web platform hears the server's refusal of another protocol version", () =>
  withServer(async (t) => {
    await assert.rejects(
      t.connect({ platform: webPlatform(tcpDial), protocolVersion: 2 }),
      /refused the connection: .*version 1, not 2/,
    );
  }));

Deno.test("a ParleyClient on the web platform: register, login, text, image and a file, both ways", () =>
  withServer(async (t) => {
    const platform = countedWebPlatform();
    const alice = await webUser(t, platform, "alice");
    const bob = await webUser(t, platform, "bob");
    // One Deno client too: the web and Deno ends of the protocol talk to each other.
    const carol = await t.user("carol");
    assert.equal(platform.secured, 2);
    assert.equal(alice.fingerprint, t.server.fingerprint);

    await alice.sendText({ user: "bob" }, "hello from the browser");
    const text = (await bob.nextEvent(MsgType.PASS)).body as Record<string, unknown>;
    assert.equal(text.source_username, "alice");
    assert.equal(text.data, "hello from the browser");
    await carol.sendText({ user: "alice" }, "hello from Deno");
    const back = (await alice.nextEvent(MsgType.PASS)).body as Record<string, unknown>;
    assert.equal(back.data, "hello from Deno");

    // An image of several frames' worth, so the channel splits and joins around it.
    const image = pattern(300 * 1024, 5);
    await bob.sendImage({ user: "alice" }, image, "cat.png");
    const got = (await alice.nextEvent(MsgType.PASS)).body as Record<string, unknown>;
    assert.equal(got.type, "image");
    assert.equal(got.name, "cat.png");
    assert.equal(sha(got.data as Uint8Array), sha(image));

    // A file, hashed by the buffering hasher on both sides and checked by SHA-256.
    const file = pattern(200 * 1024 + 77, 9);
    const sending = alice.sendFile("bob", "notes.bin", file);
    const offer = (await bob.nextEvent(MsgType.FILE_INCOMING)).body as {
      transfer_id: number;
      size: number;
      sha256: Uint8Array;
    };
    assert.equal(Buffer.from(offer.sha256).toString("hex"), sha(file));
    const parts: Uint8Array[] = [];
    const received = await bob.acceptFile(offer, {
      write: (d) => Promise.resolve(void parts.push(d.slice())),
    });
    assert.equal(received.sha256Ok, true);
    assert.deepEqual(await sending, {
      transferId: offer.transfer_id,
      size: file.length,
      sha256Ok: true,
    });
    assert.equal(sha(new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer())), sha(file));

    // And a file from Deno to the browser.
    const small = pattern(5000, 2);
    const toAlice = carol.sendFile("alice", "small.bin", small);
    const offer2 = (await alice.nextEvent(MsgType.FILE_INCOMING)).body as {
      transfer_id: number;
      size: number;
      sha256: Uint8Array;
    };
    const chunks: Uint8Array[] = [];
    const r2 = await alice.acceptFile(offer2, {
      write: (d) => Promise.resolve(void chunks.push(d.slice())),
    });
    assert.equal(r2.sha256Ok, true);
    assert.equal((await toAlice).sha256Ok, true);
    assert.equal(
      sha(new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer())),
      sha(small),
    );

    await alice.finish(1000);
    assert.equal(alice.isClosed, true);
  }));

Deno.test("a Link on the web platform reconnects and resumes with its token after a restart", () =>
  withServer(async (t) => {
    const platform = countedWebPlatform();
    const opts = { host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts, platform };
    const first = await ParleyClient.connect(opts);
    await first.register("ida", "password-ida");
    await first.login("ida", "password-ida");
    const original = first.token!;
    await t.user("bob");
    const statuses: string[] = [];
    const link = new Link(opts, { status: (s) => statuses.push(s), event: () => {} });
    link.open(first);
    try {
      await t.restart();
      await link.sendText({ user: "bob" }, "after the restart");
      assert.ok(statuses.includes("Reconnected."), statuses.join(" | "));
      assert.equal(platform.secured, 2, "the reconnection went through the web platform");
      assert.notDeepEqual(link.client!.token, original, "RESUME rotated the token");
      const again = await t.connect();
      await again.login("bob", "password-bob");
      const pass = (await again.nextEvent(MsgType.PASS)).body as Record<string, unknown>;
      assert.equal(pass.data, "after the restart");
    } finally {
      link.close();
      first.close();
    }
  }));

Deno.test("BufferingHasher gives SHA-256 of everything it was given, copied as it came", async () => {
  const h = new BufferingHasher();
  const buf = new Uint8Array(3000);
  const whole: number[] = [];
  for (let i = 0; i < 5; i++) {
    buf.fill(i + 1); // the caller reuses its buffer: the hasher must have copied the last chunk
    h.update(buf.subarray(0, 1000 + i));
    whole.push(...buf.subarray(0, 1000 + i));
  }
  assert.equal(Buffer.from(await h.digest()).toString("hex"), sha(new Uint8Array(whole)));
  assert.throws(() => h.update(new Uint8Array(1)));
  assert.equal(
    Buffer.from(await new BufferingHasher().digest()).toString("hex"),
    sha(new Uint8Array(0)),
  );
});
