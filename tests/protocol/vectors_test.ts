/**
 * PROTOCOL.md's test vectors, recomputed with the real code: every hex string and every value in
 * the document's `vectors`, `values` and `messages` blocks must come out of src/ byte for byte and
 * decode back to what the document says. A second, independent path rebuilds the handshake and the
 * frames from the document's own words (constants, transcript layout, nonce layout) with
 * node:crypto. The message-type and error-code tables must list exactly the code's types and codes
 * with the right numbers (both ways), request kinds and failure types must match the dispatcher's,
 * the limits table must match config.json both ways, request examples must pass the request
 * schemas, the private-message conversation of section 18.6 must be what a real server sends, the
 * layout tables must add up, and any other hex or "NAME (number)" in the prose is checked, so no
 * digit of the document goes unchecked.
 */

import assert from "node:assert/strict";
import * as nc from "node:crypto";
import { FrameOpener, FrameSealer } from "../../src/crypto/cipher.ts";
import {
  encodeClientHello,
  encodeRefusal,
  finishClient,
  MAGIC,
  PROTOCOL_VERSION,
  respondToClient,
  SERVER_HELLO_BYTES,
} from "../../src/crypto/handshake.ts";
import {
  ed25519KeyPair,
  ed25519Verify,
  fingerprint,
  hkdfSha256,
  sha256,
  x25519KeyPair,
  x25519Shared,
} from "../../src/crypto/keys.ts";
import defaults from "../../config.json" with { type: "json" };
import { ParleyClient } from "../../src/client/client.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { decodeMessages, encodeMessages, type Message } from "../../src/protocol/message_codec.ts";
import {
  failureTypeOf,
  MsgType,
  msgTypeName,
  RequestBody,
  type RequestType,
} from "../../src/protocol/messages.ts";
import type { Schema } from "../../src/protocol/schema.ts";
import { decodeValue, encodeValue, Tag, type Value } from "../../src/protocol/value.ts";
import { TestServer } from "../helpers/server.ts";
import { concat } from "../helpers/bytes.ts";

const DOC_URL = new URL("../../PROTOCOL.md", import.meta.url);
const DOC = await Deno.readTextFile(DOC_URL);

// ---------------------------------------------------------------------------------------------
// Parsing PROTOCOL.md

/** The bodies of every fenced code block whose info string is `info`. */
function codeBlocks(doc: string, info: string): string[] {
  const out: string[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (const m of doc.matchAll(fence)) if (m[1].trim() === info) out.push(m[2]);
  return out;
}

interface Entry {
  head: string;
  /** The indented lines below the head, trimmed. */
  rest: string[];
}

/** Splits a block into entries: a head line at the left margin, then its indented lines. */
function entries(block: string): Entry[] {
  const out: Entry[] = [];
  block.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    if (/^\s/.test(line)) {
      assert.ok(out.length > 0, `indented line ${i + 1} has no entry above it: ${line}`);
      out[out.length - 1].rest.push(line.trim());
    } else {
      out.push({ head: line, rest: [] });
    }
  });
  return out;
}

/** Strict hex: lowercase digit pairs, spaces allowed only as separators. */
function hexBytes(text: string, what: string): Uint8Array {
  const compact = text.replace(/\s+/g, "");
  assert.match(compact, /^(?:[0-9a-f]{2})+$/, `${what}: not lowercase hex bytes: "${text}"`);
  return Uint8Array.fromHex(compact);
}

type Vector = { kind: "hex"; bytes: Uint8Array } | { kind: "text"; text: string };

/** Every `name: content` entry of the `vectors` blocks; names must be unique. */
function parseVectors(doc: string): Map<string, Vector> {
  const out = new Map<string, Vector>();
  for (const block of codeBlocks(doc, "vectors")) {
    for (const e of entries(block)) {
      const m = /^([a-z0-9_]+):(.*)$/.exec(e.head);
      assert.ok(m, `vector line is not "name: content": ${e.head}`);
      const [, name, inline] = m;
      assert.ok(!out.has(name), `vector "${name}" appears twice`);
      const content = [inline.trim(), ...e.rest].join(" ").trim();
      if (content.startsWith('"')) {
        assert.equal(e.rest.length, 0, `text vector "${name}" must fit on one line`);
        const text = JSON.parse(content);
        assert.equal(typeof text, "string", `vector "${name}" is not a JSON string`);
        out.set(name, { kind: "text", text });
      } else {
        out.set(name, { kind: "hex", bytes: hexBytes(content, name) });
      }
    }
  }
  return out;
}

/**
 * The document's value notation: JSON plus `bytes(hex)`, `bytes(hex*n)` (the hex repeated n
 * times) and `datetime(ISO 8601 UTC with milliseconds)`.
 */
function parseNotation(text: string): Value {
  const json = text.replace(
    /"(?:[^"\\]|\\.)*"|bytes\(([0-9a-f]*)(?:\*(\d+))?\)|datetime\(([^()]*)\)/g,
    (match, hex, times, iso) => {
      if (match.startsWith('"')) return match;
      if (hex !== undefined) {
        return JSON.stringify({ $bytes: hex.repeat(times === undefined ? 1 : Number(times)) });
      }
      return JSON.stringify({ $datetime: iso });
    },
  );
  return JSON.parse(json, (_key, v) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === "$bytes") {
        return v.$bytes === "" ? new Uint8Array(0) : hexBytes(v.$bytes, text);
      }
      if (keys.length === 1 && keys[0] === "$datetime") {
        const date = new Date(v.$datetime);
        assert.equal(date.toISOString(), v.$datetime, `not a canonical datetime: ${v.$datetime}`);
        return date;
      }
    }
    return v;
  });
}

/** The text of the section whose heading starts with `heading` ("## 7." or "### 8.2 "). */
function section(doc: string, heading: string): string {
  const level = heading.slice(0, heading.indexOf(" ") + 1);
  const start = doc.indexOf(`\n${heading}`);
  assert.ok(start >= 0, `PROTOCOL.md has no section "${heading}"`);
  // The section ends at the next heading of the same level or higher.
  const next = /\n(#{2,3}) /g;
  next.lastIndex = start + 1;
  for (let m; (m = next.exec(doc)) !== null;) {
    if (m[1].length + 1 <= level.length) return doc.slice(start, m.index);
  }
  return doc.slice(start);
}

/** The rows `| number | \`NAME\` | …` of the tables in one `## ` section. */
function tableRows(doc: string, headingStart: string): Map<string, number> {
  const text = section(doc, `## ${headingStart}`);
  const rows = new Map<string, number>();
  for (const m of text.matchAll(/^\|\s*(\d+)\s*\|\s*`([A-Z_]+)`\s*\|/gm)) {
    assert.ok(!rows.has(m[2]), `${m[2]} is listed twice in "${headingStart}"`);
    rows.set(m[2], Number(m[1]));
  }
  return rows;
}

const vectors = parseVectors(DOC);

function hex(name: string): Uint8Array {
  const v = vectors.get(name);
  assert.ok(v, `PROTOCOL.md has no vector "${name}"`);
  assert.equal(v.kind, "hex", `vector "${name}" should be hex`);
  return v.bytes;
}

function text(name: string): string {
  const v = vectors.get(name);
  assert.ok(v, `PROTOCOL.md has no vector "${name}"`);
  assert.equal(v.kind, "text", `vector "${name}" should be a quoted string`);
  return v.text;
}

const EXPECTED_VECTORS = [
  "magic",
  "version",
  "signature_context",
  "hkdf_info_c2s",
  "hkdf_info_s2c",
  "client_ephemeral_private",
  "client_ephemeral_public",
  "server_ephemeral_private",
  "server_ephemeral_public",
  "server_identity_seed",
  "server_identity_public",
  "client_hello",
  "server_hello",
  "transcript_hash",
  "signature",
  "shared_secret",
  "c2s_key",
  "s2c_key",
  "fingerprint",
  "refusal_reason",
  "refusal",
  "nonce_counter_0",
  "nonce_counter_1",
  "nonce_counter_257",
  "c2s_nonce_0",
  "c2s_nonce_1",
  "s2c_nonce_0",
  "login_plaintext",
  "login_frame",
  "ping_plaintext",
  "ping_frame",
  "lg_ok_plaintext",
  "lg_ok_frame",
];

// ---------------------------------------------------------------------------------------------
// Fixed inputs and the messages of section 18.4, as the document describes them

/** 32 bytes counting up from `first`: 01..20, 21..40, 41..60. */
function counting(first: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => first + i);
}

const EXPIRES_MS = 1_797_984_000_000;

const LOGIN_MESSAGE: Message = {
  type: MsgType.LOGIN,
  id: 1,
  body: ["alice", "correct horse battery staple"],
};
const PING_MESSAGE: Message = { type: MsgType.PING, id: 2, body: null };
const LG_OK_MESSAGE: Message = {
  type: MsgType.LG_OK,
  id: 1,
  body: {
    username: "alice",
    token: new Uint8Array(32).fill(0xaa),
    expires: new Date(EXPIRES_MS),
  },
};

/** 4 zero bytes | u64 BE counter, written out independently of src/crypto/cipher.ts. */
function nonce(counter: number): Uint8Array {
  const out = new Uint8Array(12);
  new DataView(out.buffer).setBigUint64(4, BigInt(counter));
  return out;
}

/** AES-256-GCM sealing of one frame straight from section 4, with node:crypto. */
function sealIndependently(key: Uint8Array, nonceBytes: Uint8Array, plaintext: Uint8Array) {
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, plaintext.length + 16);
  const cipher = nc.createCipheriv("aes-256-gcm", key, nonceBytes);
  cipher.setAAD(header);
  const body = concat(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
  return concat(header, body);
}

const utf8 = (s: string) => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// Tests

Deno.test("PROTOCOL.md lists exactly the expected vectors, once each", () => {
  assert.deepEqual([...vectors.keys()].sort(), [...EXPECTED_VECTORS].sort());
});

Deno.test("constants: magic, version, signature context and HKDF info strings", () => {
  assert.deepEqual(hex("magic"), MAGIC);
  assert.deepEqual(hex("magic"), utf8("PRLY"));
  assert.deepEqual(hex("version"), Uint8Array.of(PROTOCOL_VERSION));
  // The strings are checked by the independent derivation below; their lengths as the prose says.
  assert.equal(utf8(text("signature_context")).length, 28);
  assert.equal(utf8(text("hkdf_info_c2s")).length, 25);
  assert.equal(utf8(text("hkdf_info_s2c")).length, 25);
  for (const name of ["signature_context", "hkdf_info_c2s", "hkdf_info_s2c"]) {
    assert.ok(DOC.includes(`"${text(name)}"`), `the prose should quote "${text(name)}"`);
  }
});

Deno.test("handshake vectors: keys, hellos, transcript, secret and fingerprint", () => {
  // The inputs are the fixed byte runs the document promises.
  assert.deepEqual(hex("client_ephemeral_private"), counting(0x01));
  assert.deepEqual(hex("server_ephemeral_private"), counting(0x21));
  assert.deepEqual(hex("server_identity_seed"), counting(0x41));

  const clientEphemeral = x25519KeyPair(hex("client_ephemeral_private"));
  const serverEphemeral = x25519KeyPair(hex("server_ephemeral_private"));
  const identity = ed25519KeyPair(hex("server_identity_seed"));
  assert.deepEqual(clientEphemeral.publicKey, hex("client_ephemeral_public"));
  assert.deepEqual(serverEphemeral.publicKey, hex("server_ephemeral_public"));
  assert.deepEqual(identity.publicKey, hex("server_identity_public"));

  const clientHello = encodeClientHello(clientEphemeral.publicKey);
  assert.deepEqual(clientHello, hex("client_hello"));
  assert.equal(hex("client_hello").length, 37);

  const server = respondToClient(hex("client_hello"), identity, serverEphemeral);
  assert.deepEqual(server.serverHello, hex("server_hello"));
  assert.equal(hex("server_hello").length, SERVER_HELLO_BYTES);
  assert.equal(SERVER_HELLO_BYTES, 133);

  // The ServerHello layout of section 3.2.
  const sh = hex("server_hello");
  assert.deepEqual(sh.subarray(0, 4), hex("magic"));
  assert.deepEqual(sh.subarray(4, 5), hex("version"));
  assert.deepEqual(sh.subarray(5, 37), hex("server_ephemeral_public"));
  assert.deepEqual(sh.subarray(37, 69), hex("server_identity_public"));
  assert.deepEqual(sh.subarray(69), hex("signature"));
  // The ClientHello layout of section 3.1.
  assert.deepEqual(
    hex("client_hello"),
    concat(hex("magic"), hex("version"), hex("client_ephemeral_public")),
  );

  // Transcript hash and signature as section 3.4 defines them.
  assert.deepEqual(sha256(hex("client_hello"), sh.subarray(0, 69)), hex("transcript_hash"));
  const signed = concat(utf8(text("signature_context")), hex("transcript_hash"));
  assert.equal(signed.length, 60);
  assert.ok(ed25519Verify(hex("server_identity_public"), signed, hex("signature")));

  // The shared secret, from both sides.
  const shared = hex("shared_secret");
  assert.deepEqual(
    x25519Shared(clientEphemeral.secret, hex("server_ephemeral_public")),
    shared,
  );
  assert.deepEqual(
    x25519Shared(serverEphemeral.secret, hex("client_ephemeral_public")),
    shared,
  );

  // Key derivation as section 3.5 defines it, and the server's view of the keys.
  const th = hex("transcript_hash");
  assert.deepEqual(hkdfSha256(shared, th, text("hkdf_info_c2s"), 32), hex("c2s_key"));
  assert.deepEqual(hkdfSha256(shared, th, text("hkdf_info_s2c"), 32), hex("s2c_key"));
  assert.deepEqual(server.keys.receive, hex("c2s_key"));
  assert.deepEqual(server.keys.send, hex("s2c_key"));

  // Fingerprint: "SHA256:" and unpadded base64 of SHA-256 of the identity key.
  assert.equal(fingerprint(hex("server_identity_public")), text("fingerprint"));
  const digest = nc.createHash("sha256").update(hex("server_identity_public")).digest("base64");
  assert.equal("SHA256:" + digest.replace(/=+$/, ""), text("fingerprint"));
  const example = /Example: `(SHA256:[^`]+)`/.exec(DOC);
  assert.ok(example, "section 3.7 should show an example fingerprint");
  assert.equal(example[1], text("fingerprint"));
});

Deno.test("finishClient on the vector ServerHello yields the vector keys", () => {
  const clientEphemeral = x25519KeyPair(hex("client_ephemeral_private"));
  const { keys, serverIdentity } = finishClient(
    hex("client_hello"),
    clientEphemeral,
    hex("server_hello"),
  );
  assert.deepEqual(keys.send, hex("c2s_key"));
  assert.deepEqual(keys.receive, hex("s2c_key"));
  assert.deepEqual(serverIdentity, hex("server_identity_public"));
});

Deno.test("refusal vector", () => {
  const reason = text("refusal_reason");
  assert.deepEqual(encodeRefusal(reason), hex("refusal"));
  const r = hex("refusal");
  assert.deepEqual(r.subarray(0, 4), hex("magic"));
  assert.equal(r[4], 0);
  assert.equal(r[5], PROTOCOL_VERSION);
  assert.equal(new DataView(r.buffer, r.byteOffset).getUint16(6), r.length - 8);
  assert.equal(new TextDecoder().decode(r.subarray(8)), reason);
  assert.equal(reason, `This server speaks Parley protocol version ${PROTOCOL_VERSION}, not 2`);
});

Deno.test("nonce vectors: 4 zero bytes and the u64 big-endian frame counter", () => {
  assert.deepEqual(hex("c2s_nonce_0"), nonce(0));
  assert.deepEqual(hex("c2s_nonce_1"), nonce(1));
  assert.deepEqual(hex("s2c_nonce_0"), nonce(0));
  assert.deepEqual(hex("nonce_counter_0"), nonce(0));
  assert.deepEqual(hex("nonce_counter_1"), nonce(1));
  assert.deepEqual(hex("nonce_counter_257"), nonce(257));
  // And the real sealer uses exactly these: its frame 257 matches a seal with that nonce.
  const sealer = new FrameSealer(hex("c2s_key"));
  for (let i = 0; i < 257; i++) sealer.seal(hex("ping_plaintext"));
  assert.deepEqual(
    sealer.seal(hex("ping_plaintext")),
    sealIndependently(hex("c2s_key"), hex("nonce_counter_257"), hex("ping_plaintext")),
  );
});

Deno.test("frame vectors: plaintexts and sealed frames, both directions", () => {
  // Plaintexts from the message codec.
  assert.deepEqual(encodeMessages([LOGIN_MESSAGE]), hex("login_plaintext"));
  assert.deepEqual(encodeMessages([PING_MESSAGE]), hex("ping_plaintext"));
  assert.deepEqual(encodeMessages([LG_OK_MESSAGE]), hex("lg_ok_plaintext"));
  assert.equal(new Date(EXPIRES_MS).toISOString(), "2026-12-23T00:00:00.000Z");
  assert.equal(Date.UTC(2026, 11, 23), EXPIRES_MS);

  // The real sealers, counters running from 0 per direction.
  const c2s = new FrameSealer(hex("c2s_key"));
  assert.deepEqual(c2s.seal(hex("login_plaintext")), hex("login_frame"));
  assert.deepEqual(c2s.seal(hex("ping_plaintext")), hex("ping_frame"));
  const s2c = new FrameSealer(hex("s2c_key"));
  assert.deepEqual(s2c.seal(hex("lg_ok_plaintext")), hex("lg_ok_frame"));

  // The same frames from section 4's words alone: the documented nonces, AAD = header.
  const independent = [
    ["c2s_key", "c2s_nonce_0", "login"],
    ["c2s_key", "c2s_nonce_1", "ping"],
    ["s2c_key", "s2c_nonce_0", "lg_ok"],
  ];
  for (const [key, nonceName, name] of independent) {
    assert.deepEqual(
      sealIndependently(hex(key), hex(nonceName), hex(`${name}_plaintext`)),
      hex(`${name}_frame`),
      `${name}_frame from section 4 alone`,
    );
  }

  for (const name of ["login", "ping", "lg_ok"]) {
    const frame = hex(`${name}_frame`);
    const length = new DataView(frame.buffer, frame.byteOffset).getUint32(0);
    assert.equal(length, frame.length - 4, `${name}_frame: length counts ciphertext and tag`);
    assert.equal(length, hex(`${name}_plaintext`).length + 16);
  }
});

Deno.test("frame vectors open with the real receiver and decode to the documented messages", () => {
  // Server side: the two client frames arrive in one chunk and open in order with c2s_key.
  const server = respondToClient(
    hex("client_hello"),
    ed25519KeyPair(hex("server_identity_seed")),
    x25519KeyPair(hex("server_ephemeral_private")),
  );
  const inbound = new FrameDecoder(1024 * 1024);
  inbound.push(concat(hex("login_frame"), hex("ping_frame")));
  const opener = new FrameOpener(server.keys.receive);
  const first = opener.open(inbound.readFrame()!);
  const second = opener.open(inbound.readFrame()!);
  assert.equal(inbound.readFrame(), null);
  assert.deepEqual(first, hex("login_plaintext"));
  assert.deepEqual(second, hex("ping_plaintext"));
  assert.deepEqual(decodeMessages(first), { messages: [LOGIN_MESSAGE] });
  assert.deepEqual(decodeMessages(second), { messages: [PING_MESSAGE] });

  // Client side: the server's frame opens with s2c_key.
  const { keys } = finishClient(
    hex("client_hello"),
    x25519KeyPair(hex("client_ephemeral_private")),
    hex("server_hello"),
  );
  const outbound = new FrameDecoder(1024 * 1024);
  outbound.push(hex("lg_ok_frame"));
  const reply = new FrameOpener(keys.receive).open(outbound.readFrame()!);
  assert.deepEqual(reply, hex("lg_ok_plaintext"));
  assert.deepEqual(decodeMessages(reply), { messages: [LG_OK_MESSAGE] });
});

Deno.test("value vectors: encode to the documented bytes and decode back", () => {
  const blocks = codeBlocks(DOC, "values");
  assert.equal(blocks.length, 1, "PROTOCOL.md should have one values block");
  const list = entries(blocks[0]);
  const heads = list.map((e) => e.head);
  // The kinds the specification promises examples of.
  for (
    const required of [
      "null",
      "true",
      "1",
      "-2",
      '"héllo"',
      "bytes(00ff)",
      "datetime(2026-12-23T00:00:00.000Z)",
    ]
  ) {
    assert.ok(heads.includes(required), `values block lacks ${required}`);
  }
  assert.ok(heads.some((h) => h.startsWith("[") && h !== "[]"), "values block lacks a list");
  assert.ok(
    list.some((e) => {
      const v = parseNotation(e.head);
      return v !== null && typeof v === "object" && !Array.isArray(v) &&
        !(v instanceof Uint8Array) && !(v instanceof Date) && Object.keys(v).length === 2;
    }),
    "values block lacks a dict with two keys",
  );

  for (const e of list) {
    assert.ok(e.rest.length > 0, `value ${e.head} has no encoding`);
    const bytes = hexBytes(e.rest.join(" "), e.head);
    const value = parseNotation(e.head);
    assert.deepEqual(encodeValue(value), bytes, `encoding of ${e.head}`);
    assert.deepEqual(decodeValue(bytes), value, `decoding of ${e.head}`);
  }
});

/** One message of a `messages` block: the notation parsed, and the bytes under it. */
interface Example {
  name: keyof typeof MsgType;
  message: Message;
  bytes: Uint8Array;
  head: string;
}

function parseExamples(block: string): Example[] {
  return entries(block).map((e) => {
    const m = /^([A-Z_]+) (\d+) (.+)$/.exec(e.head);
    assert.ok(m, `message example is not "TYPE id body": ${e.head}`);
    const [, name, id, body] = m;
    assert.ok(Object.hasOwn(MsgType, name), `unknown message type ${name}`);
    assert.ok(e.rest.length > 0, `message ${e.head} has no encoding`);
    return {
      name: name as keyof typeof MsgType,
      message: {
        type: MsgType[name as keyof typeof MsgType],
        id: Number(id),
        body: parseNotation(body),
      },
      bytes: hexBytes(e.rest.join(" "), e.head),
      head: e.head,
    };
  });
}

const EXAMPLES = codeBlocks(DOC, "messages").flatMap(parseExamples);

function isRequest(type: number): type is RequestType {
  return Object.hasOwn(RequestBody, type);
}

function isDict(v: Value): v is { [key: string]: Value } {
  return v !== null && typeof v === "object" && !Array.isArray(v) &&
    !(v instanceof Uint8Array) && !(v instanceof Date);
}

function dict(v: Value): { [key: string]: Value } {
  assert.ok(isDict(v), `not a dict: ${JSON.stringify(v)}`);
  return v;
}

Deno.test("message examples encode to the documented bytes and decode back", () => {
  assert.ok(EXAMPLES.length >= 60, `expected examples for every type, found ${EXAMPLES.length}`);
  for (const { message, bytes, head } of EXAMPLES) {
    assert.deepEqual(encodeMessages([message]), bytes, `encoding of ${head}`);
    assert.deepEqual(decodeMessages(bytes), { messages: [message] }, `decoding of ${head}`);
  }
  // Every type of the protocol has at least one example.
  const seen = new Set<string>(EXAMPLES.map((e) => e.name));
  for (const name of Object.keys(MsgType)) assert.ok(seen.has(name), `no example of ${name}`);
});

Deno.test("message examples agree with the code: request schemas, codes, config defaults", () => {
  const failures = new Set<number>([
    MsgType.LG_FAIL,
    MsgType.REG_FAIL,
    MsgType.GENERAL_ERROR,
  ]);
  const codes = new Set<number>(Object.values(ErrorCode));
  for (const { name, message, head } of EXAMPLES) {
    const { type, id, body } = message;
    if (isRequest(type)) {
      // Every request shown is one the server accepts: it passes the request's schema.
      (RequestBody[type] as Schema<unknown>).check(body, "");
      const unanswered = ["ACK", "FILE_CHUNK", "FILE_ACK"].includes(name);
      assert.equal(id === 0, unanswered, `${head}: id 0 is only for ACK, FILE_CHUNK, FILE_ACK`);
    } else if (failures.has(type) || (isDict(body) && body.success === false)) {
      const b = dict(body);
      assert.ok(codes.has(b.code as number), `${head}: unknown error code`);
      assert.equal(typeof b.message, "string", `${head}: failure without a message`);
    }
    if (type === MsgType.STATUS_ADD_FRIEND || type === MsgType.STATUS_INVITE) {
      assert.equal(typeof dict(body).success, "boolean", `${head}: no success flag`);
    }
    if (type === MsgType.INITIALIZE) {
      for (const pass of dict(body).world as Value[]) assert.equal(dict(pass).seq, 0);
    }
    if (type === MsgType.FILE_OFFERED) {
      const b = dict(body);
      assert.equal(b.chunk_bytes, defaults.files.chunkBytes, `${head}: files.chunkBytes`);
      assert.equal(b.window, defaults.files.window, `${head}: files.window`);
    }
    if (type === MsgType.PASS) {
      const b = dict(body);
      assert.equal(b.seq === 0, b.world === true, `${head}: seq 0 is for world messages only`);
    }
  }
  // The file transfer of section 13 is one file: its chunks have the offered size and SHA-256.
  const offer = dict(EXAMPLES.find((e) => e.name === "FILE_OFFER")!.message.body);
  const chunks = EXAMPLES.filter((e) => e.name === "FILE_CHUNK").map((e) => dict(e.message.body));
  const file = concat(...chunks.map((c) => c.data as Uint8Array));
  assert.equal(file.length, offer.size);
  assert.deepEqual(sha256(file), offer.sha256);
});

/** The four messages of section 18.6: SEND, SENT, PASS, ACK. */
function conversation(): Example[] {
  const blocks = codeBlocks(section(DOC, "### 18.6 "), "messages");
  assert.equal(blocks.length, 1, "section 18.6 should have one messages block");
  const list = parseExamples(blocks[0]);
  assert.deepEqual(list.map((e) => e.name), ["SEND", "SENT", "PASS", "ACK"]);
  return list;
}

Deno.test("section 18.6: a private message, its SENT, the recipient's PASS and the ACK", () => {
  const [send, sent, pass, ack] = conversation().map((e) => e.message);
  const s = dict(send.body);
  const r = dict(sent.body);
  const p = dict(pass.body);
  // The fixed values the prose promises.
  assert.deepEqual(s.id, Uint8Array.fromHex("00112233445566778899aabbccddeeff"));
  assert.equal((r.time as Date).toISOString(), "2026-11-23T12:00:00.000Z");
  assert.equal((r.time as Date).getTime(), 1_795_435_200_000);
  // One message throughout: the same id and time; the reply and the ACK match their messages.
  assert.equal(sent.id, send.id);
  assert.deepEqual(r.id, s.id);
  assert.deepEqual(p.id, s.id);
  assert.deepEqual(p.time, r.time);
  assert.equal(p.data, s.data);
  assert.equal(p.type, s.type);
  assert.equal((p.target_username as string).toLowerCase(), s.target_username);
  assert.equal(pass.id, 0);
  assert.equal(ack.id, 0);
  assert.equal(ack.body, p.seq);
  assert.equal(p.seq, 1);
  for (const m of [send, ack]) {
    (RequestBody[m.type as RequestType] as Schema<unknown>).check(m.body, "");
  }
});

Deno.test("section 18.6 is what a real server sends, apart from the time", async () => {
  const [send, sent, pass, ack] = conversation().map((e) => e.message);
  const p = dict(pass.body);
  const t = await TestServer.start();
  try {
    const sender = await t.user(p.source_username as string);
    // The recipient acknowledges by hand, with the documented ACK.
    const recipient = await ParleyClient.connect({
      host: "127.0.0.1",
      port: t.port,
      knownHosts: t.knownHosts,
      autoAck: false,
    });
    t.clients.push(recipient);
    const recipientName = p.target_username as string;
    await recipient.register(recipientName, "password-" + recipientName);
    await recipient.login(recipientName, "password-" + recipientName);
    // INITIALIZE has the documented keys, and its limits are the defaults the example shows.
    const init = dict((await recipient.nextEvent(MsgType.INITIALIZE)).body);
    const example = dict(EXAMPLES.find((e) => e.name === "INITIALIZE")!.message.body);
    assert.deepEqual(Object.keys(init), Object.keys(example));
    assert.deepEqual(init.limits, example.limits);

    const reply = await sender.request(send.type, send.body);
    assert.equal(msgTypeName(reply.type), "SENT", JSON.stringify(reply.body));
    const delivered = await recipient.nextEvent(MsgType.PASS);
    assert.equal(delivered.id, 0);
    const time = dict(reply.body).time as Date;
    assert.ok(Math.abs(time.getTime() - Date.now()) < 60_000, "SENT.time is the server's clock");
    assert.deepEqual(dict(delivered.body).time, time, "PASS carries the SENT's time");
    // The client library numbers its own requests; the documented SENT answers request 7.
    const documented = (m: Message, id: number): Message => ({
      ...m,
      id,
      body: { ...dict(m.body), time: dict(sent.body).time },
    });
    assert.deepEqual(encodeMessages([documented(reply, send.id)]), encodeMessages([sent]));
    assert.deepEqual(encodeMessages([documented(delivered, 0)]), encodeMessages([pass]));

    // The documented ACK (id 0, no reply) empties the inbox: the next login has nothing pending.
    recipient.notify(ack.type, ack.body);
    await recipient.ping();
    recipient.close();
    const again = await t.connect();
    await again.login(recipientName, "password-" + recipientName);
    assert.equal(dict((await again.nextEvent(MsgType.INITIALIZE)).body).pending, 0);
  } finally {
    await t.stop();
  }
});

Deno.test("hex in the prose is checked too: value examples and the magic", () => {
  const prose = DOC.replace(/^```[^\n]*\n[\s\S]*?^```[ \t]*$/gm, "");
  const checked = new Set<number>();
  // "`notation` is `hex`": the encoding of that value.
  let pairs = 0;
  for (const m of prose.matchAll(/`([^`]+)` is\s+`([0-9a-f][0-9a-f\s]*)`/g)) {
    const value = parseNotation(m[1]);
    assert.deepEqual(encodeValue(value), hexBytes(m[2], m[1]), `prose example ${m[1]}`);
    checked.add(m.index + m[0].length - m[2].length - 1);
    pairs++;
  }
  assert.ok(pairs >= 6, `expected the value examples of section 6, found ${pairs}`);
  // Any other inline hex of two bytes or more must be the magic.
  for (const m of prose.matchAll(/`([0-9a-f]{2}(?:\s?[0-9a-f]{2})+)`/g)) {
    if (checked.has(m.index + 1)) continue;
    assert.deepEqual(hexBytes(m[1], "inline hex"), MAGIC, `unchecked hex in PROTOCOL.md: ${m[0]}`);
  }
});

/** Both ways: the table lists exactly the code's names, each with the code's number. */
function assertTableMatches(rows: Map<string, number>, code: Record<string, number>, what: string) {
  assert.ok(rows.size > 0, `PROTOCOL.md has no ${what} table`);
  for (const [name, value] of rows) {
    assert.ok(Object.hasOwn(code, name), `PROTOCOL.md lists ${what} ${name}, the code has none`);
    assert.equal(value, code[name], `PROTOCOL.md numbers ${what} ${name} as ${value}`);
  }
  for (const [name, value] of Object.entries(code)) {
    assert.ok(rows.has(name), `PROTOCOL.md does not list ${what} ${name} (${value})`);
  }
  assert.equal(rows.size, Object.keys(code).length);
}

interface TypeRow {
  type: number;
  name: string;
  kind: string;
  success: string;
  failure: string;
  section: string;
}

/** The rows of the message type table of section 7, every column. */
function typeRows(): TypeRow[] {
  const text = section(DOC, "## 7. Message types");
  const rows: TypeRow[] = [];
  for (const line of text.split("\n")) {
    if (!/^\|\s*\d+\s*\|/.test(line)) continue;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    assert.equal(cells.length, 7, `type table row should have 7 cells: ${line}`);
    const [type, name, kind, success, failure, , sectionRef] = cells;
    const m = /^`([A-Z_]+)`$/.exec(name);
    assert.ok(m, `type table row names no type: ${line}`);
    rows.push({ type: Number(type), name: m[1], kind, success, failure, section: sectionRef });
  }
  return rows;
}

Deno.test("the message type table lists exactly MsgType, with the right numbers", () => {
  assertTableMatches(tableRows(DOC, "7. Message types"), MsgType, "message type");
});

Deno.test("the message type table's kinds, replies and sections agree with the code", () => {
  const rows = typeRows();
  assert.equal(rows.length, Object.keys(MsgType).length);
  const byName = new Map(rows.map((r) => [r.name, r]));
  const typeName = (cell: string) => /^`([A-Z_]+)`$/.exec(cell)?.[1];
  for (const r of rows) {
    if (isRequest(r.type)) {
      // Requests are exactly the types the server has a body schema (and a route) for.
      assert.equal(r.kind, "request", `${r.name} is a request`);
      assert.equal(typeName(r.failure), msgTypeName(failureTypeOf(r.type)), `${r.name} failure`);
      if (r.success !== "none") {
        const reply = typeName(r.success);
        assert.ok(reply && byName.get(reply)?.kind === "response", `${r.name}: ${r.success}`);
      }
      // A request's section is headed by its name and number.
      assert.match(
        section(DOC, `### ${r.section} `).split("\n")[1],
        new RegExp(`\\b${r.name} \\(${r.type}\\)`),
      );
    } else {
      assert.ok(["response", "push", "response, push"].includes(r.kind), `${r.name}: ${r.kind}`);
      assert.equal(r.success, "—", `${r.name} is not a request`);
      assert.equal(r.failure, "—", `${r.name} is not a request`);
    }
    // The section named is the first of sections 8 to 13 whose heading names the type, or if
    // none does, the first whose text names it in bold.
    const sections = [...DOC.matchAll(/^### (\d+\.\d+) /gm)]
      .map((m) => m[1])
      .filter((n) => Number(n.split(".")[0]) >= 8 && Number(n.split(".")[0]) <= 13)
      .map((n) => ({ n, text: section(DOC, `### ${n} `) }));
    const named = new RegExp(`\\b${r.name}\\b`);
    const first = sections.find((s) => named.test(s.text.split("\n")[1])) ??
      sections.find((s) => s.text.includes(`**${r.name}**`));
    assert.equal(r.section, first?.n, `${r.name} is described first in section ${first?.n}`);
  }
  // Answered only when they fail, and sent with id 0: the three of section 5.2.
  const unanswered = rows.filter((r) => r.success === "none").map((r) => r.name);
  assert.deepEqual(unanswered, ["ACK", "FILE_CHUNK", "FILE_ACK"]);
  assert.ok(section(DOC, "### 5.2 ").includes("**ACK, FILE_CHUNK and FILE_ACK**"));
});

Deno.test("the error code table lists exactly ErrorCode, with the right numbers, each once, in order", () => {
  const rows = tableRows(DOC, "14. Error codes");
  assertTableMatches(rows, ErrorCode, "error code");
  // Numbers 0 to 26 are contiguous; later ones come in blocks by feature (section 14), so a gap
  // there is a block's unused room. No number is used twice, and the table is in number order.
  const codes = [...rows.values()];
  assert.deepEqual(codes.filter((n) => n <= 26), Array.from({ length: 27 }, (_, i) => i));
  assert.deepEqual(codes, [...new Set(codes)].sort((a, b) => a - b));
});

Deno.test("every type or code named with its number in the prose and tables has that number", () => {
  const codes: Record<string, number> = ErrorCode;
  const types: Record<string, number> = MsgType;
  let checked = 0;
  // "LOGIN (1)", "**OK** (203)" and "code: 12 (SHUTTING_DOWN)"; "9 `BAD_REQUEST`" in the tables.
  for (const m of DOC.matchAll(/\b([A-Z][A-Z_]+)\**\s\((\d+)\)/g)) {
    if (!Object.hasOwn(types, m[1])) continue;
    assert.equal(Number(m[2]), types[m[1]], `PROTOCOL.md says ${m[0]}`);
    checked++;
  }
  for (const m of DOC.matchAll(/\b(\d+)\s\(([A-Z][A-Z_]+)\)/g)) {
    if (!Object.hasOwn(codes, m[2])) continue;
    assert.equal(Number(m[1]), codes[m[2]], `PROTOCOL.md says ${m[0]}`);
    checked++;
  }
  for (const m of DOC.matchAll(/\b(\d+)\s`([A-Z][A-Z_]+)`/g)) {
    assert.ok(Object.hasOwn(codes, m[2]), `PROTOCOL.md says ${m[0]}, not an error code`);
    assert.equal(Number(m[1]), codes[m[2]], `PROTOCOL.md says ${m[0]}`);
    checked++;
  }
  assert.ok(checked >= 80, `expected the numbered names of sections 7 to 15, found ${checked}`);
});

Deno.test("every section reference points at a section of the document", () => {
  const headings = new Set([...DOC.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]));
  let checked = 0;
  for (const m of DOC.matchAll(/(RFC \d+,\s+)?\bsections?\s+(\d+(?:\.\d+)?)(?:\s+to\s+(\d+))?/g)) {
    if (m[1]) continue; // a section of an RFC
    for (const ref of [m[2], m[3]]) {
      if (ref === undefined) continue;
      assert.ok(headings.has(ref), `PROTOCOL.md refers to section ${ref}, which it does not have`);
      checked++;
    }
  }
  assert.ok(checked >= 100, `expected the cross-references, found ${checked}`);
});

/** config.json's settings as dotted paths with their default values. */
function settings(tree: Record<string, unknown>, prefix = ""): [string, unknown][] {
  return Object.entries(tree).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return typeof value === "object" && value !== null
      ? settings(value as Record<string, unknown>, path)
      : [[path, value] as [string, unknown]];
  });
}

/** Settings that have no effect a client can see on the wire. */
const SERVER_ONLY = new Set([
  "host",
  "dataDir",
  "accounts.scrypt.N",
  "accounts.scrypt.r",
  "accounts.scrypt.p",
  "accounts.hashConcurrency",
  // How the server computes AES-GCM does not change a byte on the wire.
  "crypto.nativeAes",
  // The operator's HTTP endpoint is not the chat protocol.
  "http.enabled",
  "http.host",
  "http.port",
  "http.maxConnections",
  "http.requestTimeoutMs",
  // Where the web port listens, and with which certificate: the bytes over it are the same.
  "web.host",
  "web.tls",
  // Whether the server is one of a cluster, and its NATS settings: clients see the same protocol.
  "cluster.nats",
  "cluster.prefix",
  "cluster.replicas",
  "cluster.nodeTimeoutMs",
]);

Deno.test("the limits table lists config.json's wire-visible settings with their defaults", () => {
  const text = section(DOC, "## 17. Limits");
  const rows = new Map<string, number | boolean | string>();
  // A default is a number, a boolean, or a string in double quotes.
  for (
    const m of text.matchAll(/^\|\s*`([a-zA-Z0-9.]+)`\s*\|\s*(\d+|true|false|"[^"|]*")\s*\|/gm)
  ) {
    assert.ok(!rows.has(m[1]), `${m[1]} is listed twice`);
    rows.set(
      m[1],
      m[2].startsWith('"') ? m[2].slice(1, -1) : /\d/.test(m[2]) ? Number(m[2]) : m[2] === "true",
    );
  }
  const wanted = new Map(settings(defaults).filter(([path]) => !SERVER_ONLY.has(path)));
  for (const [path, value] of rows) {
    assert.ok(wanted.has(path), `the limits table lists ${path}, config.json has no such setting`);
    assert.equal(value, wanted.get(path), `the limits table gives ${path} the default ${value}`);
  }
  for (const path of wanted.keys()) assert.ok(rows.has(path), `the limits table lacks ${path}`);
});

Deno.test("the value tag table agrees with Tag", () => {
  const start = DOC.indexOf("\n## 6. Values");
  assert.ok(start >= 0, 'PROTOCOL.md has no section "## 6. Values"');
  const section = DOC.slice(start, DOC.indexOf("\n## ", start + 1));
  const rows: Record<string, number> = {};
  const names = /^\|\s*(\d+)\s*\|\s*(null|int|str|list|dict|bool|bytes|datetime)\s*\|/gm;
  for (const m of section.matchAll(names)) {
    rows[m[2].toUpperCase()] = Number(m[1]);
  }
  assert.deepEqual(rows, { ...Tag });
});

Deno.test("layout tables: each offset is the previous offset plus its size", () => {
  const tables = [...DOC.matchAll(/^\| offset \|\s*size \|[^\n]*\n\|[^\n]*\n((?:\|[^\n]*\n)+)/gm)];
  assert.ok(tables.length >= 6, `expected the layout tables, found ${tables.length}`);
  const totals: number[] = [];
  for (const table of tables) {
    let next = 0;
    for (const row of table[1].trim().split("\n")) {
      const [offset, size] = row.split("|").slice(1, 3).map((c) => c.trim());
      if (/^\d+$/.test(offset)) assert.equal(Number(offset), next, `offset in row: ${row}`);
      next = /^\d+$/.test(offset) && /^\d+$/.test(size) ? Number(offset) + Number(size) : NaN;
    }
    totals.push(next);
  }
  // The ClientHello and ServerHello tables add up to the hello sizes.
  assert.ok(totals.includes(37) && totals.includes(SERVER_HELLO_BYTES), `totals ${totals}`);
});

Deno.test("the vector parser rejects a changed digit, a dropped line and uppercase hex", () => {
  // Guards against a parser that would read nothing and let every comparison pass vacuously.
  const sample = "```vectors\nx: 00ff\ny:\n    0102\n    0304\n```\n";
  const parsed = parseVectors(sample);
  assert.deepEqual(parsed.get("x"), { kind: "hex", bytes: Uint8Array.of(0, 255) });
  assert.deepEqual(parsed.get("y"), { kind: "hex", bytes: Uint8Array.of(1, 2, 3, 4) });
  assert.throws(() => parseVectors("```vectors\nx: 00FF\n```\n"));
  assert.throws(() => parseVectors("```vectors\nx: 00f\n```\n"));
  assert.throws(() => parseVectors("```vectors\nx: 00\nx: 01\n```\n"));
  // Every hex vector in the document is non-empty, so none can match by being blank.
  for (const [name, v] of vectors) {
    if (v.kind === "hex") assert.ok(v.bytes.length > 0, `${name} is empty`);
  }
});
