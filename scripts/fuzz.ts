/**
 * `deno run -A scripts/fuzz.ts [--seconds N] [--seed S] [--json] [--concurrency C]`
 *
 * A time-boxed fuzzer for everything that parses bytes from the network, in two lanes that
 * share the process:
 *
 * - Decoders, round-robin: decodeValue, decodeMessages, FrameDecoder (random chunking) with
 *   FrameOpener.open, the handshake parsers (parseClientHello, respondToClient, isServerHello,
 *   finishClient) and the RequestBody schemas. Inputs are random bytes and mutated valid
 *   encodings (bit flips, byte insertion and deletion, length fields set to random or extreme
 *   u32s, retagging, truncation, splicing two inputs). Each must give a value or one of the
 *   typed errors (DecodeError, FrameSizeError, FrameAuthError, HandshakeError, SchemaError),
 *   and what decodes must re-encode to the same value.
 * - A live server started in-process on a loopback port, alternating raw TCP connections
 *   (random bytes, mutated ClientHellos: the server must close, refuse, or answer a valid
 *   ServerHello) and sealed connections after a real handshake, anonymous or logged in, that
 *   send random and mutated message plaintexts. The server must answer every request exactly
 *   once, never with INTERNAL, never send a frame that fails to open or decode, close on a bad
 *   frame, log no error, and keep answering a separate client's PING within 2 s.
 *
 * Every input comes from a PRNG seeded by (seed, category, iteration), so a failure's seed and
 * iteration name its input; failures also carry the input's hex. Exit code 1 on any failure.
 */

import { join } from "node:path";
import { isDeepStrictEqual, parseArgs } from "node:util";
import { ParleyClient } from "../src/client/client.ts";
import { applyConfig, type Config, ConfigError, defaultConfig } from "../src/config/config.ts";
import { FrameOpener, FrameSealer } from "../src/crypto/cipher.ts";
import {
  CLIENT_HELLO_BYTES,
  encodeClientHello,
  finishClient,
  isServerHello,
  MAGIC,
  parseClientHello,
  PROTOCOL_VERSION,
  respondToClient,
  SERVER_HELLO_BYTES,
  SERVER_PREFIX_BYTES,
} from "../src/crypto/handshake.ts";
import {
  ed25519KeyPair,
  ed25519Sign,
  fingerprint,
  type KeyPair,
  sha256,
  x25519KeyPair,
} from "../src/crypto/keys.ts";
import {
  DecodeError,
  ErrorCode,
  errorCodeName,
  FrameAuthError,
  FrameSizeError,
  HandshakeError,
  SchemaError,
} from "../src/protocol/errors.ts";
import { FrameDecoder } from "../src/protocol/frame.ts";
import {
  type DecodedMessages,
  decodeMessages,
  encodeMessages,
  type Message,
} from "../src/protocol/message_codec.ts";
import { MsgType, msgTypeName, RequestBody, type RequestType } from "../src/protocol/messages.ts";
import type { Schema } from "../src/protocol/schema.ts";
import { decodeValue, DEFAULT_MAX_DEPTH, encodeValue, type Value } from "../src/protocol/value.ts";
import { createLogger } from "../src/server/log.ts";
import { type RunningServer, startServer } from "../src/server/server.ts";
import { initiateHandshake } from "../src/transport/handshake_io.ts";
import { TcpTransport } from "../src/transport/tcp.ts";
import { writeAll } from "../src/transport/transport.ts";
import {
  type BodyContext,
  concat,
  deepValue,
  frameFields,
  iterationSeed,
  messageFields,
  mutate,
  nearValidBody,
  Prng,
  randomMessages,
  randomValue,
  REQUEST_TYPES,
  splice,
  validBody,
  validRequests,
  valueLengthFields,
} from "./fuzz_inputs.ts";

export const DECODER_CATEGORIES = ["value", "messages", "frames", "handshake", "schema"] as const;
export const LIVE_CATEGORIES = ["live_raw", "live_sealed"] as const;
export const CATEGORIES = [...DECODER_CATEGORIES, ...LIVE_CATEGORIES] as const;
export type Category = typeof CATEGORIES[number];

export interface FuzzOptions {
  seconds: number;
  seed: number;
  /** Live inputs in flight at once, each holding one socket (default 8, at most 50). */
  concurrency?: number;
}

export interface FailureExample {
  category: Category;
  /** The run's seed; with the category and iteration it rebuilds the input. */
  seed: number;
  iteration: number;
  /** What went wrong, with the stack of an unexpected exception. */
  error: string;
  input_bytes: number;
  /** The input (for live inputs: the bytes written, or each frame's plaintext, "|"-joined). */
  input_hex: string;
}

export interface FuzzReport {
  seconds: number;
  seed: number;
  iterations: Record<Category, number>;
  failures: number;
  failure_examples: FailureExample[];
  /** How inputs ended, per category ("DecodeError": 812, "decoded": 90, ...). */
  outcomes: Record<Category, Record<string, number>>;
  /** Facts about the live server over the run. */
  live: {
    pings: number;
    slowestPingMs: number;
    /** Open file descriptors of the process (null where /proc/self/fd is not readable). */
    fdBaseline: number | null;
    fdMax: number | null;
    fdEnd: number | null;
    /** Settings the fuzz server could not relax (unknown to this version of the config). */
    skippedSettings: string[];
    /** What the server sent the sealed connections, by type name. */
    replyTypes: Record<string, number>;
  };
  /** Milliseconds spent in each decoder category. */
  busyMs: Record<Category, number>;
}

const MAX_EXAMPLES = 5;
const MAX_HEX_BYTES = 4096;
/** Decoder work between two yields to the event loop, so the live server keeps running. */
const SLICE_MS = 5;
const PING_TIMEOUT_MS = 2000;
/** Frames this fuzzer accepts from the server (the server's own maximum is smaller). */
const CLIENT_MAX_FRAME = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Bookkeeping

/** A broken expectation; anything else thrown out of a check is reported as a harness bug. */
class Finding extends Error {
  override name = "Finding";
}

function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const stack = e.stack?.split("\n").slice(0, 8).join("\n");
  return stack && stack.includes(e.message) ? stack : `${e.name}: ${e.message}\n${stack ?? ""}`;
}

class Recorder {
  failures = 0;
  readonly examples: FailureExample[] = [];
  readonly iterations = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<
    Category,
    number
  >;
  readonly outcomes = Object.fromEntries(CATEGORIES.map((c) => [c, {}])) as Record<
    Category,
    Record<string, number>
  >;
  readonly busyMs = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  /** Types of the messages the live server sent to the sealed fuzz connections. */
  readonly replyTypes: Record<string, number> = {};

  constructor(readonly seed: number) {}

  outcome(category: Category, what: string): void {
    const o = this.outcomes[category];
    o[what] = (o[what] ?? 0) + 1;
  }

  fail(category: Category, iteration: number, input: Uint8Array | string, error: string): void {
    this.failures++;
    this.outcome(category, "FAILURE");
    if (this.examples.length >= MAX_EXAMPLES) return;
    const full = typeof input === "string" ? input : input.subarray(0, MAX_HEX_BYTES + 1).toHex();
    const hex = full.length > 2 * MAX_HEX_BYTES ? full.slice(0, 2 * MAX_HEX_BYTES) + "…" : full;
    const bytes = typeof input === "string"
      ? input.replaceAll(/[^0-9a-f]/g, "").length / 2
      : input.length;
    this.examples.push({
      category,
      seed: this.seed,
      iteration,
      error,
      input_bytes: bytes,
      input_hex: hex,
    });
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Runs `fn`: its value, or the allowed error it threw; anything else is a Finding. */
function attempt<T>(
  allowed: readonly ErrorClass[],
  what: string,
  fn: () => T,
): { ok: true; value: T } | { ok: false; error: Error } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (allowed.some((cls) => e instanceof cls)) return { ok: false, error: e as Error };
    throw new Finding(`${what} threw an untyped exception: ${describeError(e)}`);
  }
}

/** A decoded value must survive encode → decode unchanged. */
function assertReencodes(v: Value, what: string): void {
  let again: Value;
  try {
    again = decodeValue(encodeValue(v), 64);
  } catch (e) {
    throw new Finding(`${what}: a decoded value failed to re-encode: ${describeError(e)}`);
  }
  if (!isDeepStrictEqual(again, v)) throw new Finding(`${what}: the re-encoded value differs`);
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The checks decodeMessages' result must pass, whatever the input. */
function checkDecoded(plaintext: Uint8Array, maxDepth: number, what: string): DecodedMessages {
  const decoded = attempt([], what, () => decodeMessages(plaintext, maxDepth));
  if (!decoded.ok) throw new Finding(`${what} threw`); // unreachable: nothing is allowed
  const { messages, error } = decoded.value;
  if (error) {
    if (!(error.cause instanceof DecodeError)) {
      throw new Finding(`${what}: the error's cause is a ${error.cause}, not a DecodeError`);
    }
    if (!isU32(error.id)) throw new Finding(`${what}: the error's id ${error.id} is not a u32`);
  } else if (messages.length === 0) {
    throw new Finding(`${what}: neither a message nor an error`);
  }
  for (const m of messages) {
    if (!isU32(m.type) || !isU32(m.id)) throw new Finding(`${what}: type or id is not a u32`);
    assertReencodes(m.body, what);
  }
  return decoded.value;
}

// ---------------------------------------------------------------------------------------------
// Decoders

/** What a decoder check reports: its input (for the failure record) and how it ended. */
interface Trial {
  input: Uint8Array;
  outcome: string;
}

function checkValue(rng: Prng, trial: Trial): void {
  const r = rng.int(0, 9);
  let input: Uint8Array;
  if (r < 2) input = rng.bytes(rng.int(0, 64));
  else if (r === 2) input = encodeValue(deepValue(rng, rng.int(12, 20)));
  else {
    const valid = encodeValue(randomValue(rng));
    const other = rng.chance(0.2) ? encodeValue(randomValue(rng)) : undefined;
    input = r === 9 ? valid : mutate(rng, valid, valueLengthFields(valid), other);
  }
  trial.input = input;
  const maxDepth = rng.chance(0.1) ? rng.int(0, 20) : DEFAULT_MAX_DEPTH;
  const result = attempt([DecodeError], "decodeValue()", () => decodeValue(input, maxDepth));
  if (result.ok) {
    assertReencodes(result.value, "decodeValue()");
    trial.outcome = "decoded";
  } else {
    trial.outcome = "DecodeError";
    if (r === 9 && maxDepth >= DEFAULT_MAX_DEPTH) {
      throw new Finding(`decodeValue() rejected a valid encoding: ${result.error}`);
    }
  }
}

function checkMessages(rng: Prng, trial: Trial): void {
  const r = rng.int(0, 9);
  let input: Uint8Array;
  let original: Message[] | null = null;
  if (r < 2) input = rng.bytes(rng.int(0, 80));
  else {
    const messages = randomMessages(rng);
    const valid = encodeMessages(messages);
    if (r === 9) {
      input = valid;
      original = messages;
    } else {
      const other = rng.chance(0.2) ? encodeMessages(randomMessages(rng)) : undefined;
      input = mutate(rng, valid, messageFields(valid), other);
    }
  }
  trial.input = input;
  const maxDepth = rng.chance(0.1) ? rng.int(0, 20) : DEFAULT_MAX_DEPTH;
  const { messages, error } = checkDecoded(input, maxDepth, "decodeMessages()");
  trial.outcome = error ? (messages.length > 0 ? "partial" : "DecodeError") : "decoded";
  if (original && maxDepth >= DEFAULT_MAX_DEPTH && !isDeepStrictEqual(messages, original)) {
    throw new Finding("decodeMessages() did not give back the messages encoded");
  }
}

/** Fixed keys for the frame fuzzer; streams spliced in use the other key, so cannot forge. */
const FRAME_KEY = new Uint8Array(32).map((_, i) => 0xa0 ^ i);
const OTHER_KEY = new Uint8Array(32).map((_, i) => 0x5c ^ i);

function sealedStream(rng: Prng, key: Uint8Array, maxPlain: number): {
  plaintexts: Uint8Array[];
  stream: Uint8Array;
} {
  const sealer = new FrameSealer(key);
  const plaintexts: Uint8Array[] = [];
  const frames: Uint8Array[] = [];
  const count = rng.int(1, 3);
  for (let f = 0; f < count; f++) {
    let p: Uint8Array;
    const r = rng.int(0, 9);
    if (r === 0) p = new Uint8Array(0);
    else if (r === 1) p = rng.bytes(rng.int(1, 100));
    else {
      p = encodeMessages(randomMessages(rng));
      if (r < 5) p = mutate(rng, p, messageFields(p)); // authentic but malformed
    }
    if (p.length > maxPlain) p = p.slice(0, maxPlain); // an honest sealer keeps to the limit
    plaintexts.push(p);
    frames.push(sealer.seal(p));
  }
  return { plaintexts, stream: concat(...frames) };
}

function checkFrames(rng: Prng, trial: Trial): void {
  const maxPlain = rng.pick([16, 100, 512, 2048, 65536]);
  const { plaintexts, stream } = sealedStream(rng, FRAME_KEY, maxPlain);
  const prefix = rng.chance(0.2) ? rng.bytes(rng.int(0, 40)) : null; // raw handshake bytes
  const mode = rng.int(0, 9);
  const intact = mode < 2;
  let body: Uint8Array;
  if (intact) body = stream;
  else if (mode === 2) {
    body = rng.bytes(rng.int(0, 200));
    // a plausible length half the time, so that bodies reach FrameOpener.open()
    if (body.length >= 4 && rng.chance(0.5)) {
      new DataView(body.buffer).setUint32(0, rng.int(16, body.length));
    }
  } else {
    const other = rng.chance(0.25) ? sealedStream(rng, OTHER_KEY, maxPlain).stream : undefined;
    body = mutate(rng, stream, frameFields(stream), other);
  }
  const input = prefix ? concat(prefix, body) : body;
  trial.input = input;

  const allowed = [DecodeError, FrameSizeError, FrameAuthError];
  const decoder = new FrameDecoder(maxPlain);
  const opener = new FrameOpener(FRAME_KEY);
  const opened: Uint8Array[] = [];
  let rawDone = prefix === null;
  let error: Error | null = null;
  const maxChunk = input.length > 2048 ? rng.pick([64, 512, 4096]) : rng.pick([1, 3, 16, 64, 512]);
  // Half the trials lend each chunk from one reused buffer, as the channel does, and scribble
  // over it once the decoder has kept the rest: a frame that still pointed into it would open
  // to other bytes.
  const lend = rng.chance(0.5);
  const scratch = new Uint8Array(input.length);
  feed: for (const chunk of rng.chunks(input, maxChunk)) {
    if (lend) {
      scratch.set(chunk);
      decoder.lend(scratch.subarray(0, chunk.length));
    } else decoder.push(chunk);
    try {
      if (!rawDone) {
        const raw = attempt(
          allowed,
          "FrameDecoder.readRaw()",
          () => decoder.readRaw(prefix!.length),
        );
        if (!raw.ok) throw new Finding(`readRaw() failed outside a frame: ${raw.error}`);
        if (raw.value === null) continue;
        if (!equalBytes(raw.value, prefix!)) throw new Finding("readRaw() returned other bytes");
        rawDone = true;
      }
      if (!intact && rng.chance(0.03)) {
        decoder.setMaxPlaintext(rng.pick([0, 16, 1000, maxPlain]));
      }
      if (!intact && rng.chance(0.03)) {
        // a stray raw read: fine between frames, a DecodeError inside one
        const raw = attempt(
          allowed,
          "FrameDecoder.readRaw()",
          () => decoder.readRaw(rng.int(0, 8)),
        );
        if (!raw.ok) {
          error = raw.error;
          break;
        }
      }
      for (;;) {
        const read = attempt(allowed, "FrameDecoder.readFrame()", () => decoder.readFrame());
        if (!read.ok) {
          error = read.error;
          break feed;
        }
        const frame = read.value;
        if (frame === null) break;
        if (frame.body.length < 16 || frame.header.length !== 4) {
          throw new Finding(`readFrame() handed out a frame of ${frame.body.length} bytes`);
        }
        // Lent frames are opened in place, as the channel opens them, and copied out.
        const open = attempt(
          allowed,
          lend ? "FrameOpener.openInPlace()" : "FrameOpener.open()",
          () => lend ? opener.openInPlace(frame).slice() : opener.open(frame),
        );
        if (!open.ok) {
          error = open.error;
          break feed;
        }
        const index = opened.length;
        if (index >= plaintexts.length || !equalBytes(open.value, plaintexts[index])) {
          throw new Finding(`frame ${index} opened to a plaintext that was never sealed as it`);
        }
        checkDecoded(open.value, DEFAULT_MAX_DEPTH, `decodeMessages() of frame ${index}`);
        opened.push(open.value);
      }
    } finally {
      if (lend) {
        decoder.keep();
        scratch.fill(0xa5);
      }
    }
  }
  if (intact) {
    if (error) throw new Finding(`an intact stream failed: ${error}`);
    if (opened.length !== plaintexts.length || decoder.buffered !== 0) {
      throw new Finding(
        `an intact stream gave ${opened.length} of ${plaintexts.length} frames, ` +
          `${decoder.buffered} bytes left`,
      );
    }
  }
  trial.outcome = error ? error.name : intact ? "intact" : "incomplete";
}

interface HandshakeFixture {
  clientEphemeral: KeyPair;
  clientHello: Uint8Array;
  serverEphemeral: KeyPair;
  serverHello: Uint8Array;
  clientKeys: { send: Uint8Array; receive: Uint8Array };
}

const SIGNATURE_CONTEXT = new TextEncoder().encode("parley/1 handshake signature");

/** X25519 public keys of small order (and non-canonical forms): no usable shared secret. */
const LOW_ORDER_KEYS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((h) => Uint8Array.fromHex(h));

class HandshakeFixtures {
  readonly identity: KeyPair;
  readonly all: HandshakeFixture[] = [];

  constructor(seed: number) {
    const rng = new Prng(seed ^ 0x4a5b_6c7d);
    this.identity = ed25519KeyPair(rng.bytes(32));
    for (let i = 0; i < 4; i++) {
      const clientEphemeral = x25519KeyPair(rng.bytes(32));
      const serverEphemeral = x25519KeyPair(rng.bytes(32));
      const clientHello = encodeClientHello(clientEphemeral.publicKey);
      const { serverHello } = respondToClient(clientHello, this.identity, serverEphemeral);
      const { keys } = finishClient(clientHello, clientEphemeral, serverHello);
      this.all.push({
        clientEphemeral,
        clientHello,
        serverEphemeral,
        serverHello,
        clientKeys: keys,
      });
    }
  }

  /** A ServerHello for `clientHello` signed by the fixture identity over arbitrary keys. */
  resign(clientHello: Uint8Array, ephemeral: Uint8Array, identity: Uint8Array): Uint8Array {
    const hello = new Uint8Array(SERVER_HELLO_BYTES);
    hello.set(MAGIC);
    hello[4] = PROTOCOL_VERSION;
    hello.set(ephemeral, 5);
    hello.set(identity, 37);
    const th = sha256(clientHello, hello.subarray(0, 69));
    hello.set(ed25519Sign(this.identity, concat(SIGNATURE_CONTEXT, th)), 69);
    return hello;
  }
}

function randomClientHello(rng: Prng, fx: HandshakeFixture): Uint8Array {
  const r = rng.int(0, 5);
  if (r === 0) return rng.bytes(rng.chance(0.5) ? CLIENT_HELLO_BYTES : rng.int(0, 45));
  if (r === 1) {
    return encodeClientHello(rng.pick(LOW_ORDER_KEYS), rng.chance(0.8) ? 1 : rng.int(0, 255));
  }
  if (r === 2) return encodeClientHello(rng.bytes(32), rng.int(0, 255));
  if (r === 3) return fx.clientHello;
  return mutate(rng, fx.clientHello, [], rng.chance(0.2) ? rng.bytes(40) : undefined);
}

function checkHandshake(rng: Prng, trial: Trial, fixtures: HandshakeFixtures): void {
  const fx = rng.pick(fixtures.all);
  const target = rng.int(0, 4);
  if (target === 0) {
    const input = randomClientHello(rng, fx);
    trial.input = input;
    const r = attempt([HandshakeError], "parseClientHello()", () => parseClientHello(input));
    if (r.ok) {
      if (
        input.length !== CLIENT_HELLO_BYTES || !equalBytes(input.subarray(0, 4), MAGIC) ||
        r.value.version !== input[4] || !equalBytes(r.value.ephemeralPublic, input.subarray(5))
      ) throw new Finding("parseClientHello() accepted or misread a malformed hello");
    }
    trial.outcome = r.ok ? "parsed" : "HandshakeError";
  } else if (target === 1) {
    const input = randomClientHello(rng, fx);
    trial.input = input;
    const r = attempt(
      [HandshakeError],
      "respondToClient()",
      () => respondToClient(input, fixtures.identity, fx.serverEphemeral),
    );
    if (r.ok && equalBytes(input, fx.clientHello)) {
      const { keys } = finishClient(fx.clientHello, fx.clientEphemeral, r.value.serverHello);
      if (
        !equalBytes(keys.send, r.value.keys.receive) || !equalBytes(keys.receive, r.value.keys.send)
      ) {
        throw new Finding("respondToClient() and finishClient() derived different keys");
      }
    }
    if (r.ok && LOW_ORDER_KEYS.some((k) => equalBytes(k, input.subarray(5)))) {
      throw new Finding("respondToClient() accepted a low-order X25519 key");
    }
    trial.outcome = r.ok ? "answered" : "HandshakeError";
  } else if (target === 2) {
    const valid = new Uint8Array([...MAGIC, rng.chance(0.5) ? 1 : 0]);
    const input = rng.chance(0.3) ? rng.bytes(rng.int(0, 8)) : mutate(rng, valid, []);
    trial.input = input;
    const r = attempt([HandshakeError], "isServerHello()", () => isServerHello(input));
    if (r.ok) {
      const wellFormed = input.length === SERVER_PREFIX_BYTES &&
        equalBytes(input.subarray(0, 4), MAGIC) && input[4] === (r.value ? PROTOCOL_VERSION : 0);
      if (!wellFormed) throw new Finding(`isServerHello() said ${r.value} for a bad prefix`);
    }
    trial.outcome = r.ok ? (r.value ? "hello" : "refusal") : "HandshakeError";
  } else if (target === 3) {
    const input = rng.chance(0.1)
      ? fx.serverHello
      : mutate(rng, fx.serverHello, [], rng.chance(0.2) ? rng.bytes(140) : undefined);
    trial.input = input;
    const r = attempt(
      [HandshakeError],
      "finishClient()",
      () => finishClient(fx.clientHello, fx.clientEphemeral, input),
    );
    if (r.ok && !equalBytes(input, fx.serverHello)) {
      throw new Finding("finishClient() accepted a tampered ServerHello");
    }
    if (r.ok && !equalBytes(r.value.keys.send, fx.clientKeys.send)) {
      throw new Finding("finishClient() derived other keys from the same ServerHello");
    }
    trial.outcome = r.ok ? "finished" : "HandshakeError";
  } else {
    // correctly signed, but over a bad ephemeral key or an identity that is not a point
    const lowOrder = rng.chance(0.5);
    const ephemeral = lowOrder ? rng.pick(LOW_ORDER_KEYS) : rng.bytes(32);
    const foreignIdentity = rng.chance(0.3);
    const identity = foreignIdentity ? rng.bytes(32) : fixtures.identity.publicKey;
    const input = fixtures.resign(fx.clientHello, ephemeral, identity);
    trial.input = input;
    const r = attempt(
      [HandshakeError],
      "finishClient()",
      () => finishClient(fx.clientHello, fx.clientEphemeral, input),
    );
    if (r.ok && lowOrder) throw new Finding("finishClient() accepted a low-order X25519 key");
    if (r.ok && foreignIdentity) {
      throw new Finding("finishClient() accepted a signature by another identity");
    }
    trial.outcome = r.ok ? "finished" : "HandshakeError";
  }
}

const SCHEMA_TYPES = Object.keys(RequestBody).map(Number) as RequestType[];

function checkSchema(rng: Prng, trial: Trial, ctx: BodyContext): void {
  const type = rng.pick(SCHEMA_TYPES);
  const r = rng.int(0, 9);
  let value: Value;
  const valid = r === 3;
  if (r < 3) value = randomValue(rng);
  else if (valid) value = validBody(rng, type, ctx);
  else if (r < 7) value = nearValidBody(rng, type, ctx);
  else {
    const encoded = encodeValue(nearValidBody(rng, type, ctx));
    try {
      value = decodeValue(mutate(rng, encoded, valueLengthFields(encoded)));
    } catch {
      value = randomValue(rng);
    }
  }
  // recorded as a message, so that the hex names the type too
  trial.input = encodeMessages([{ type, id: 0, body: value }]);
  const schema = RequestBody[type] as Schema<unknown>;
  const result = attempt(
    [SchemaError],
    `RequestBody[${msgTypeName(type)}].check()`,
    () => schema.check(value, ""),
  );
  if (valid && !result.ok) {
    throw new Finding(`a valid ${msgTypeName(type)} body was refused: ${result.error.message}`);
  }
  trial.outcome = result.ok ? "accepted" : "SchemaError";
}

type DecoderCategory = typeof DECODER_CATEGORIES[number];

function runDecoder(
  category: DecoderCategory,
  rng: Prng,
  trial: Trial,
  fixtures: HandshakeFixtures,
  bodies: BodyContext,
): void {
  if (category === "value") checkValue(rng, trial);
  else if (category === "messages") checkMessages(rng, trial);
  else if (category === "frames") checkFrames(rng, trial);
  else if (category === "handshake") checkHandshake(rng, trial, fixtures);
  else checkSchema(rng, trial, bodies);
}

const PEERS = ["fuzzp0", "fuzzp1", "fuzzp2", "fuzzp3"];

function workerUsers(concurrency: number): { name: string; password: string }[] {
  return Array.from(
    { length: concurrency },
    (_, i) => ({ name: `fuzzw${i}`, password: `fuzz-worker-password-${i}` }),
  );
}

/** The names and group ids that near-valid bodies refer to. */
function bodyContext(concurrency: number): BodyContext {
  return { usernames: [...PEERS, ...workerUsers(concurrency).map((w) => w.name)], maxGroupId: 8 };
}

/**
 * Rebuilds and reruns one decoder input of a run (`--replay category:iteration`): decoder inputs
 * depend only on the seed, the category, the iteration and the live concurrency (for the names
 * in request bodies).
 */
export function replay(
  category: DecoderCategory,
  seed: number,
  iteration: number,
  concurrency = 8,
): { input: Uint8Array; outcome: string; failure: string | null } {
  seed >>>= 0;
  const rng = new Prng(iterationSeed(seed, DECODER_CATEGORIES.indexOf(category), iteration));
  const trial: Trial = { input: new Uint8Array(0), outcome: "?" };
  try {
    runDecoder(category, rng, trial, new HandshakeFixtures(seed), bodyContext(concurrency));
    return { input: trial.input, outcome: trial.outcome, failure: null };
  } catch (e) {
    const failure = e instanceof Finding ? e.message : `harness error: ${describeError(e)}`;
    return { input: trial.input, outcome: "FAILURE", failure };
  }
}

// ---------------------------------------------------------------------------------------------
// The live server

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`, or a rejection after `ms`; `onTimeout` runs first (to close what `p` waits on). */
async function within<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout?.();
          reject(new Finding(`${what} did not finish within ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/** One client socket with a background reader, so the test side never blocks on a read. */
class Wire {
  readonly chunks: Uint8Array[] = [];
  received = 0;
  eof = false;
  #wake: (() => void) | null = null;
  readonly #reading: Promise<void>;

  constructor(readonly conn: Deno.Conn) {
    this.#reading = this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(16384);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.chunks.push(buf.slice(0, n));
        this.received += n;
        this.#notify();
      }
    } catch {
      // Reset, or closed under the read: either way the connection is over.
    }
    this.eof = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Resolves true when bytes arrive or the peer closes, false after `ms` of nothing. */
  #change(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        if (this.#wake === wake) this.#wake = null;
        resolve(false);
      }, Math.max(0, ms));
      this.#wake = wake;
    });
  }

  /** Waits until `done()` holds or the peer closes, at most `ms`; returns `done()`. */
  async until(done: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done() && !this.eof) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await this.#change(left);
    }
    return done();
  }

  /** Waits until nothing arrives for `quietMs`, the peer closes, or `capMs` pass. */
  async quiet(quietMs: number, capMs: number): Promise<void> {
    const deadline = Date.now() + capMs;
    while (!this.eof && Date.now() < deadline) {
      if (!await this.#change(Math.min(quietMs, deadline - Date.now()))) return;
    }
  }

  /** Writes all of `bytes`; false when the server has already closed. */
  async write(bytes: Uint8Array): Promise<boolean> {
    try {
      await writeAll(this.conn, bytes);
      return true;
    } catch {
      return false;
    }
  }

  all(): Uint8Array {
    return concat(...this.chunks);
  }

  async close(): Promise<void> {
    closeQuietly(this.conn);
    await this.#reading;
  }
}

/** The sealed side of a Wire: opens and decodes what the server sends. */
class SealedPeer {
  readonly sealer: FrameSealer;
  readonly #opener: FrameOpener;
  readonly #decoder: FrameDecoder;
  #consumed = 0;
  readonly messages: Message[] = [];
  /** Set when the server sent something a client cannot open or decode. */
  problem: string | null = null;

  constructor(
    readonly wire: Wire,
    keys: { send: Uint8Array; receive: Uint8Array },
    decoder: FrameDecoder,
  ) {
    this.sealer = new FrameSealer(keys.send);
    this.#opener = new FrameOpener(keys.receive);
    this.#decoder = decoder;
  }

  /** Takes in what has arrived; returns the messages so far. */
  pump(): Message[] {
    while (this.#consumed < this.wire.chunks.length) {
      this.#decoder.push(this.wire.chunks[this.#consumed++]);
    }
    while (this.problem === null) {
      let frame;
      try {
        frame = this.#decoder.readFrame();
        if (frame === null) break;
        const { messages, error } = decodeMessages(this.#opener.open(frame), 64);
        this.messages.push(...messages);
        if (error) this.problem = `the server sent a malformed message: ${error.cause.message}`;
      } catch (e) {
        this.problem = `a frame from the server failed: ${describeError(e)}`;
      }
    }
    return this.messages;
  }
}

/** Requests answered only when they fail (the handlers return null on success). */
const ANSWERED_ON_FAILURE = new Set<number>([MsgType.ACK, MsgType.FILE_CHUNK, MsgType.FILE_ACK]);
/** Messages the server never answers. */
const NEVER_ANSWERED = new Set<number>([MsgType.PONG]);
const FAILURE_REPLIES = new Set<number>([
  MsgType.LG_FAIL,
  MsgType.REG_FAIL,
  MsgType.GENERAL_ERROR,
  MsgType.STATUS_ADD_FRIEND,
  MsgType.STATUS_INVITE,
]);

interface LiveEnv {
  server: RunningServer;
  config: Config;
  port: number;
  monitor: ParleyClient;
  setup: ParleyClient[];
  dir: string;
  bodies: BodyContext;
  workers: { name: string; password: string }[];
  fdBaseline: number | null;
  skippedSettings: string[];
  replyTypes: Record<string, number>;
}

/** Open file descriptors of this process, where /proc/self/fd can be read. */
function openFds(): number | null {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n;
  } catch {
    return null;
  }
}

/** Applies each relaxation on its own, skipping settings this config does not know. */
function relax(base: Config, patches: [string, unknown][], skipped: string[]): Config {
  let config = base;
  for (const [path, value] of patches) {
    const patch: Record<string, unknown> = {};
    let at = patch;
    const parts = path.split(".");
    for (const part of parts.slice(0, -1)) at = (at[part] = {}) as Record<string, unknown>;
    at[parts[parts.length - 1]] = value;
    try {
      config = applyConfig(config, patch, "fuzz");
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      skipped.push(path);
    }
  }
  return config;
}

async function startLive(
  concurrency: number,
  onServerError: (line: string) => void,
  replyTypes: Record<string, number>,
): Promise<LiveEnv> {
  const dir = await Deno.makeTempDir({ prefix: "parley-fuzz-" });
  const skippedSettings: string[] = [];
  const base = applyConfig(defaultConfig(), {
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, "data"),
    accounts: { scrypt: { N: 1024, r: 8, p: 1 } },
  }, "fuzz");
  // The health monitor pings after every live input and every worker logs in often: lift the
  // per-IP, request-rate and failed-login limits so that they do not refuse the harness itself.
  const config = relax(base, [
    ["limits.maxConnectionsPerIp", 1000],
    ["limits.requestRate", 1_000_000],
    ["limits.requestBurst", 1_000_000],
    ["limits.preLoginRequestRate", 1_000_000],
    ["limits.preLoginRequestBurst", 1_000_000],
    ["accounts.loginFreeFailures", 1000],
    ["accounts.loginDelayMs", 1],
    ["accounts.loginMaxDelayMs", 1],
    ["accounts.registerPerIp", 1_000_000],
    ["accounts.registerPerHour", 1_000_000],
  ], skippedSettings);
  const log = createLogger({ level: "error", json: true, write: onServerError });
  let server: RunningServer;
  try {
    server = await startServer(config, log);
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const port = server.addr.port;
  const connect = () =>
    ParleyClient.connect({ host: "127.0.0.1", port, knownHosts: null, timeoutMs: 5000 });
  const setup: ParleyClient[] = [];
  try {
    const admin = await connect();
    setup.push(admin);
    const workers = workerUsers(concurrency);
    for (const w of workers) await admin.register(w.name, w.password);
    for (const p of PEERS) await admin.register(p, `fuzz-peer-password-${p}`);
    await admin.register("fuzzmon", "fuzz-monitor-password");
    // Some state for bodies to refer to: a friendship and a group (best effort).
    await admin.login("fuzzp0", "fuzz-peer-password-fuzzp0");
    await admin.addFriend("fuzzw0").catch(() => {});
    await admin.createGroup("fuzz", ["fuzzp1", "fuzzw0"]).catch(() => {});
    // The monitor logs in, so that the login deadline never drops it.
    const monitor = await connect();
    setup.push(monitor);
    await monitor.login("fuzzmon", "fuzz-monitor-password");
    await monitor.ping();
    admin.close();
    await admin.closed;
    setup.splice(setup.indexOf(admin), 1);
    return {
      server,
      config,
      port,
      monitor,
      setup,
      dir,
      bodies: bodyContext(concurrency),
      workers,
      fdBaseline: openFds(),
      skippedSettings,
      replyTypes,
    };
  } catch (e) {
    for (const c of setup) c.close();
    await Promise.all(setup.map((c) => c.closed));
    await server.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

async function stopLive(env: LiveEnv): Promise<void> {
  for (const c of env.setup) c.close();
  await Promise.all(env.setup.map((c) => c.closed));
  await env.server.close();
  await Deno.remove(env.dir, { recursive: true }).catch(() => {});
}

/** What one live input reports back to its worker. */
interface LiveTrial {
  /** The bytes it sent, or hex of each plaintext "|"-joined. */
  input: Uint8Array | string;
  outcome: string;
  /** The client socket's local port, to match server log lines naming the peer. */
  localPort: number;
  /** Closes the input's sockets (used when it overruns its time). */
  abort: () => void;
}

async function liveRaw(rng: Prng, env: LiveEnv, trial: LiveTrial): Promise<void> {
  const hello = encodeClientHello(rng.bytes(32));
  const kind = rng.int(0, 6);
  let input: Uint8Array;
  switch (kind) {
    case 0:
      input = rng.chance(0.3)
        ? concat(MAGIC, rng.bytes(rng.int(0, 60)))
        : rng.bytes(rng.int(0, 80));
      break;
    case 1:
      input = mutate(rng, hello, [], rng.chance(0.2) ? rng.bytes(40) : undefined);
      break;
    case 2:
      input = encodeClientHello(rng.bytes(32), rng.int(0, 255));
      break;
    case 3:
      input = encodeClientHello(rng.pick(LOW_ORDER_KEYS));
      break;
    case 4: {
      // a good hello, then bytes that are not a frame sealed with the session key
      const junk = rng.chance(0.5)
        ? rng.bytes(rng.int(1, 64))
        : concat(Uint8Array.of(...rng.bytes(4)), rng.bytes(rng.int(0, 40)));
      input = concat(hello, junk);
      break;
    }
    case 5:
      input = hello.slice(0, rng.int(0, CLIENT_HELLO_BYTES - 1));
      break;
    default:
      input = rng.chance(0.5) ? hello : concat(hello, rng.bytes(rng.int(1, 20)));
  }
  trial.input = input;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: env.port });
  const wire = new Wire(conn);
  trial.abort = () => closeQuietly(conn);
  trial.localPort = (conn.localAddr as Deno.NetAddr).port;
  try {
    const dribble = kind === 6;
    const chunks = rng.chunks(input, dribble ? rng.int(1, 8) : rng.pick([1, 5, 37, 4096]));
    for (const chunk of chunks) {
      if (!await wire.write(chunk)) break;
      if (dribble) await sleep(rng.int(0, 2));
    }
    const complete = input.length >= CLIENT_HELLO_BYTES;
    const magic = equalBytes(input.subarray(0, 4), MAGIC);
    const version = input[4];
    if (!complete) {
      // the server waits for the rest of the hello (until its handshake timeout)
      await wire.quiet(30, 200);
      if (wire.received > 0) throw new Finding("the server answered an incomplete ClientHello");
      trial.outcome = wire.eof ? "closed early" : "waiting";
      return;
    }
    if (!magic) {
      await wire.until(() => false, 2000);
      if (!wire.eof) {
        throw new Finding("the server kept a connection with a bad magic open for 2 s");
      }
      if (wire.received > 0) throw new Finding("the server answered a hello with a bad magic");
      trial.outcome = "closed";
      return;
    }
    if (version !== PROTOCOL_VERSION) {
      await wire.until(() => false, 2000);
      if (!wire.eof) throw new Finding(`the server kept a version ${version} hello open for 2 s`);
      const got = wire.all();
      const length = got.length >= 8 ? new DataView(got.buffer).getUint16(6) : -1;
      if (
        got.length < 8 || !equalBytes(got.subarray(0, 4), MAGIC) || got[4] !== 0 ||
        got[5] !== PROTOCOL_VERSION || got.length !== 8 + length
      ) throw new Finding(`a version ${version} hello got ${got.toHex()}, not a refusal`);
      trial.outcome = "refused";
      return;
    }
    const lowOrder = LOW_ORDER_KEYS.some((k) => equalBytes(k, input.subarray(5, 37)));
    await wire.until(() => wire.received >= SERVER_HELLO_BYTES, 2000);
    if (lowOrder) {
      await wire.until(() => false, 2000);
      if (wire.received > 0) throw new Finding("the server answered a low-order X25519 key");
      if (!wire.eof) throw new Finding("the server kept a low-order key's connection open");
      trial.outcome = "closed";
      return;
    }
    if (wire.received === 0 && wire.eof) {
      trial.outcome = "closed"; // a key node cannot use; the server gives up on it
      return;
    }
    if (wire.received < SERVER_HELLO_BYTES) {
      throw new Finding(`a complete hello got ${wire.received} bytes and no close in 2 s`);
    }
    await wire.quiet(30, 300);
    const got = wire.all();
    if (got.length !== SERVER_HELLO_BYTES) {
      throw new Finding(`the server sent ${got.length - SERVER_HELLO_BYTES} bytes after its hello`);
    }
    if (!equalBytes(got.subarray(0, 5), Uint8Array.of(...MAGIC, PROTOCOL_VERSION))) {
      throw new Finding(`the ServerHello starts ${got.subarray(0, 5).toHex()}`);
    }
    if (fingerprint(got.subarray(37, 69)) !== env.server.fingerprint) {
      throw new Finding("the ServerHello carries another identity key than the server's");
    }
    trial.outcome = wire.eof ? "hello, then closed" : "hello";
  } finally {
    await wire.close();
  }
}

/** A frame plaintext for the live server: random, valid, mutated, spliced or deep. */
function livePlaintext(rng: Prng, bodies: BodyContext): Uint8Array {
  const r = rng.int(0, 11);
  if (r === 0) return rng.bytes(rng.int(0, 200));
  if (r <= 2) return encodeMessages(randomMessages(rng, bodies, 0.9));
  if (r <= 4) return encodeMessages(validRequests(rng, bodies));
  if (r === 5) {
    // a valid header with a type from 0 to 400 and a random body
    return encodeMessages([{
      type: rng.int(0, 400),
      id: rng.int(1, 1000),
      body: randomValue(rng, 1, rng.int(1, 8)),
    }]);
  }
  if (r <= 9) {
    const valid = encodeMessages(randomMessages(rng, bodies));
    const other = rng.chance(0.3) ? encodeMessages(randomMessages(rng, bodies)) : undefined;
    return mutate(rng, valid, messageFields(valid), other);
  }
  if (r === 10) {
    const type = rng.pick(REQUEST_TYPES);
    return encodeMessages([{ type, id: rng.int(1, 1000), body: deepValue(rng, rng.int(14, 18)) }]);
  }
  return rng.chance(0.5)
    ? new Uint8Array(0)
    : splice(rng, encodeMessages(randomMessages(rng, bodies)), rng.bytes(rng.int(0, 30)));
}

/** Counts per request id: replies owed at least and at most. */
function owedReplies(
  plaintext: Uint8Array,
  maxDepth: number,
  min: Map<number, number>,
  max: Map<number, number>,
) {
  const { messages, error } = decodeMessages(plaintext, maxDepth);
  const add = (m: Map<number, number>, id: number) => m.set(id, (m.get(id) ?? 0) + 1);
  for (const msg of messages) {
    if (msg.id === 0 || NEVER_ANSWERED.has(msg.type)) continue;
    add(max, msg.id);
    if (!ANSWERED_ON_FAILURE.has(msg.type)) add(min, msg.id);
  }
  if (error && error.id !== 0) {
    add(min, error.id);
    add(max, error.id);
  }
}

const LOGIN_ID_BASE = 0xffff_ff00;

async function liveSealed(
  rng: Prng,
  env: LiveEnv,
  trial: LiveTrial,
  worker: { name: string; password: string },
): Promise<void> {
  const { limits } = env.config;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: env.port });
  trial.abort = () => closeQuietly(conn);
  trial.localPort = (conn.localAddr as Deno.NetAddr).port;
  let shaken;
  try {
    shaken = await within(
      initiateHandshake(new TcpTransport(conn), CLIENT_MAX_FRAME),
      5000,
      "the handshake",
      () => closeQuietly(conn),
    );
  } catch (e) {
    closeQuietly(conn);
    throw e instanceof Finding ? e : new Finding(`the handshake failed: ${describeError(e)}`);
  }
  const wire = new Wire(conn);
  const peer = new SealedPeer(wire, shaken.keys, shaken.decoder);
  const sent: string[] = [];
  const replyCount = (id: number) =>
    peer.pump().filter((m) => m.id === id && m.type !== MsgType.PING).length;
  try {
    let loggedIn = false;
    if (rng.chance(0.5)) {
      // log in as this worker's own user: nobody else uses it, so nothing kicks it
      for (let attempt = 0; attempt < 5 && !loggedIn; attempt++) {
        const id = LOGIN_ID_BASE + attempt;
        const plaintext = encodeMessages([{
          type: MsgType.LOGIN,
          id,
          body: [worker.name, worker.password],
        }]);
        if (!await wire.write(peer.sealer.seal(plaintext))) break;
        await wire.until(() => replyCount(id) > 0, 5000);
        const reply = peer.pump().find((m) => m.id === id);
        if (!reply) throw new Finding(`no reply to the worker's LOGIN (closed: ${wire.eof})`);
        if (reply.type === MsgType.LG_OK) loggedIn = true;
        else {
          const code = (reply.body as { code?: unknown })?.code;
          if (code !== ErrorCode.THROTTLED && code !== ErrorCode.SERVER_BUSY) {
            throw new Finding(`the worker's LOGIN got ${msgTypeName(reply.type)} code ${code}`);
          }
          await sleep(20);
        }
      }
      if (!loggedIn) throw new Finding("the worker could not log in");
    }

    const min = new Map<number, number>();
    const max = new Map<number, number>();
    let badFrame = false;
    let expectClose = false;
    const frames = rng.int(1, 4);
    const limit = loggedIn ? limits.maxFrameBytes : limits.preLoginFrameBytes;
    const outgoing: Uint8Array[] = [];
    for (let f = 0; f < frames && !badFrame; f++) {
      let plaintext = livePlaintext(rng, env.bodies);
      if (!loggedIn && rng.chance(0.03)) plaintext = rng.bytes(limit + rng.int(1, 1000));
      sent.push(plaintext.toHex());
      trial.input = sent.join("|");
      let frame = peer.sealer.seal(plaintext);
      if (plaintext.length > limit) badFrame = expectClose = true;
      else if (rng.chance(0.05)) {
        frame = frame.slice();
        const at = rng.int(0, frame.length - 1);
        frame[at] ^= 1 << rng.int(0, 7); // fails authentication
        // except that a longer length (within the limit) leaves the server waiting for more
        const length = new DataView(frame.buffer).getUint32(0);
        badFrame = true;
        expectClose = at >= 4 || length < frame.length - 4 || length > limit + 16;
      } else owedReplies(plaintext, limits.maxValueDepth, min, max);
      outgoing.push(frame);
    }
    // one write, frame by frame, or in random pieces
    const stream = concat(...outgoing);
    const pieces = rng.chance(0.5) ? outgoing : rng.chunks(stream, rng.pick([1, 7, 100, 5000]));
    for (const piece of pieces) if (!await wire.write(piece)) break;

    const satisfied = () => [...min].every(([id, n]) => replyCount(id) >= n);
    await wire.until(satisfied, 3000);
    await wire.quiet(15, 500);
    const messages = peer.pump();
    if (peer.problem) throw new Finding(peer.problem);
    for (const m of messages) {
      const code = (m.body as { code?: unknown })?.code;
      if (FAILURE_REPLIES.has(m.type) && code === ErrorCode.INTERNAL) {
        throw new Finding(
          `the server failed internally: ${msgTypeName(m.type)} ${JSON.stringify(m.body)}`,
        );
      }
    }
    for (const m of messages) {
      if (m.id >= LOGIN_ID_BASE) continue;
      const code = (m.body as { code?: unknown })?.code;
      const name = msgTypeName(m.type) +
        (FAILURE_REPLIES.has(m.type) && typeof code === "number" ? `/${errorCodeName(code)}` : "");
      env.replyTypes[name] = (env.replyTypes[name] ?? 0) + 1;
    }
    const loginByFuzz = messages.some((m) => m.type === MsgType.LG_OK && m.id < LOGIN_ID_BASE);
    if (!wire.eof) {
      for (const [id, n] of min) {
        if (replyCount(id) < n) {
          throw new Finding(`request id ${id} got ${replyCount(id)} of ${n} replies in 3 s`);
        }
      }
    }
    for (const [id, n] of max) {
      if (replyCount(id) > n) {
        throw new Finding(`request id ${id} got ${replyCount(id)} replies for ${n} requests`);
      }
    }
    if (expectClose && !loginByFuzz) {
      await wire.until(() => false, 2000);
      if (!wire.eof) throw new Finding("the server kept a connection open after a bad frame");
    }
    trial.outcome = `${loggedIn ? "logged in" : "anonymous"}${badFrame ? ", bad frame" : ""}${
      wire.eof ? ", closed" : ""
    }`;
    // acknowledge what was delivered, so that worker inboxes do not grow run after run
    const seqs = messages.filter((m) => m.type === MsgType.PASS).map((m) =>
      (m.body as { seq?: unknown })?.seq
    ).filter((s): s is number => typeof s === "number" && s > 0);
    if (loggedIn && seqs.length > 0 && !wire.eof) {
      await wire.write(
        peer.sealer.seal(encodeMessages([{ type: MsgType.ACK, id: 0, body: Math.max(...seqs) }])),
      );
    }
  } finally {
    trial.input = sent.join("|");
    await wire.close();
  }
}

/** Shares one PING among the inputs that finished while it was in flight. */
class Health {
  pings = 0;
  slowestMs = 0;
  #current: { started: number; result: Promise<string | null> } | null = null;

  constructor(readonly monitor: ParleyClient) {}

  /** Null when a PING sent no earlier than `since` came back in time, else what went wrong. */
  check(since: number): Promise<string | null> {
    const current = this.#current;
    if (current && current.started >= since) return current.result;
    const started = performance.now();
    this.pings++;
    const result = within(this.monitor.ping(), PING_TIMEOUT_MS, "the monitor's PING").then(
      () => {
        this.slowestMs = Math.max(this.slowestMs, performance.now() - started);
        return null;
      },
      (e) => `the server stopped answering PING: ${e instanceof Error ? e.message : e}`,
    );
    const entry = { started, result };
    this.#current = entry;
    result.finally(() => {
      if (this.#current === entry) this.#current = null;
    });
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// The run

/** Runs the fuzzer for `seconds`; never throws for what it finds, only reports it. */
export async function fuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const seed = opts.seed >>> 0;
  const concurrency = Math.max(1, Math.min(50, opts.concurrency ?? 8));
  const rec = new Recorder(seed);
  const deadline = Date.now() + opts.seconds * 1000;
  /** Live inputs under way, by worker. */
  const inFlight = new Map<number, { category: Category; iteration: number; trial: LiveTrial }>();

  // Anything the server logs at error level, and any promise it leaves rejected, is a bug;
  // blame the live input it names, else the inputs in flight.
  const serverProblem = (message: string, port?: number) => {
    const all = [...inFlight.values()];
    const named = all.filter((f) => port !== undefined && f.trial.localPort === port);
    const blamed = named.length > 0 ? named : all;
    const first = blamed[0];
    const others = blamed.length > 1
      ? ` (in flight: ${blamed.map((b) => `${b.category} #${b.iteration}`).join(", ")})`
      : "";
    if (first) rec.fail(first.category, first.iteration, first.trial.input, message + others);
    else rec.fail("live_sealed", -1, new Uint8Array(0), message + " (no live input in flight)");
  };
  const onServerError = (line: string) => {
    let port: number | undefined;
    try {
      const fields = JSON.parse(line) as { peer?: unknown };
      const m = typeof fields.peer === "string" ? /:(\d+)$/.exec(fields.peer) : null;
      if (m) port = Number(m[1]);
    } catch {
      // Not JSON: report the line as it is.
    }
    serverProblem(`the server logged an error: ${line}`, port);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    serverProblem(`unhandled promise rejection: ${describeError(e.reason)}`);
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    serverProblem(`uncaught exception: ${describeError(e.error ?? e.message)}`);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);

  const fixtures = new HandshakeFixtures(seed);
  let env: LiveEnv | null = null;
  let fdMax: number | null = null;
  let fdEnd: number | null = null;
  let health: Health | null = null;
  try {
    env = await startLive(concurrency, onServerError, rec.replyTypes);
    fdMax = env.fdBaseline;
    health = new Health(env.monitor);
    const liveEnv = env;
    const liveHealth = health;
    const bodies = env.bodies;

    // --- Decoders: round-robin in short slices, yielding so the server keeps serving.
    const decoders = async () => {
      let turn = 0;
      while (Date.now() < deadline) {
        const sliceEnd = performance.now() + SLICE_MS;
        do {
          const catIndex = turn++ % DECODER_CATEGORIES.length;
          const category = DECODER_CATEGORIES[catIndex];
          const iteration = rec.iterations[category]++;
          const rng = new Prng(iterationSeed(seed, catIndex, iteration));
          const trial: Trial = { input: new Uint8Array(0), outcome: "?" };
          const t0 = performance.now();
          try {
            runDecoder(category, rng, trial, fixtures, bodies);
            rec.outcome(category, trial.outcome);
          } catch (e) {
            const message = e instanceof Finding ? e.message : `harness error: ${describeError(e)}`;
            rec.fail(category, iteration, trial.input, message);
          }
          rec.busyMs[category] += performance.now() - t0;
        } while (performance.now() < sliceEnd);
        await sleep(0);
      }
    };

    // --- Live: `concurrency` workers, each alternating raw and sealed connections.
    let liveBroken = false;
    let fdReported = false;
    const fdLimit = env.fdBaseline === null ? null : env.fdBaseline + 4 * concurrency + 64;
    const liveWorker = async (w: number) => {
      for (let n = w; Date.now() < deadline && !liveBroken; n++) {
        const category = LIVE_CATEGORIES[n % 2];
        const catIndex = CATEGORIES.indexOf(category);
        const iteration = rec.iterations[category]++;
        const rng = new Prng(iterationSeed(seed, catIndex, iteration));
        const trial: LiveTrial = {
          input: new Uint8Array(0),
          outcome: "?",
          localPort: -1,
          abort() {},
        };
        const started = performance.now();
        inFlight.set(w, { category, iteration, trial });
        const run = category === "live_raw"
          ? liveRaw(rng, liveEnv, trial)
          : liveSealed(rng, liveEnv, trial, liveEnv.workers[w]);
        try {
          await within(run, 15_000, `live input ${category} #${iteration}`, () => trial.abort());
          rec.outcome(category, trial.outcome);
        } catch (e) {
          await run.catch(() => {});
          const message = e instanceof Finding ? e.message : `harness error: ${describeError(e)}`;
          rec.fail(category, iteration, trial.input, message);
        } finally {
          inFlight.delete(w);
        }
        const problem = await liveHealth.check(started);
        if (problem) {
          rec.fail(category, iteration, trial.input, problem);
          liveBroken = true; // the server is gone; more live inputs would only repeat this
        }
        const fds = openFds();
        if (fds !== null) {
          fdMax = Math.max(fdMax ?? 0, fds);
          if (fdLimit !== null && fds > fdLimit && !fdReported) {
            fdReported = true;
            rec.fail(
              category,
              iteration,
              trial.input,
              `open descriptors grew from ${liveEnv.fdBaseline} to ${fds} (limit ${fdLimit})`,
            );
          }
        }
      }
    };
    await Promise.all([
      decoders(),
      ...Array.from({ length: concurrency }, (_, w) => liveWorker(w)),
    ]);

    // Every fuzz socket is closed: the server's ends must go too.
    if (env.fdBaseline !== null) {
      const settleBy = Date.now() + 3000;
      let fds = openFds();
      while (fds !== null && fds > env.fdBaseline + 8 && Date.now() < settleBy) {
        await sleep(50);
        fds = openFds();
      }
      fdEnd = fds;
      if (fds !== null && fds > env.fdBaseline + 8) {
        rec.fail(
          "live_sealed",
          -1,
          new Uint8Array(0),
          `${fds - env.fdBaseline} descriptors more than at the start stayed open 3 s after ` +
            "every fuzz connection closed",
        );
      }
    }
    const finalCheck = await health.check(performance.now());
    if (finalCheck && !liveBroken) rec.fail("live_sealed", -1, new Uint8Array(0), finalCheck);
  } finally {
    if (env) await stopLive(env);
    // let late rejections from the shutdown surface while the listener is still on
    await sleep(0);
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  }

  return {
    seconds: opts.seconds,
    seed,
    iterations: rec.iterations,
    failures: rec.failures,
    failure_examples: rec.examples,
    outcomes: rec.outcomes,
    live: {
      pings: health?.pings ?? 0,
      slowestPingMs: Math.round(health?.slowestMs ?? 0),
      fdBaseline: env?.fdBaseline ?? null,
      fdMax,
      fdEnd,
      skippedSettings: env?.skippedSettings ?? [],
      replyTypes: rec.replyTypes,
    },
    busyMs: rec.busyMs,
  };
}

/** The readable summary printed without --json. */
export function summary(report: FuzzReport): string {
  const lines = [
    `Parley fuzz: ${report.seconds} s, seed ${report.seed}`,
    `  replay: deno run -A scripts/fuzz.ts --seconds ${report.seconds} --seed ${report.seed}`,
    "",
  ];
  for (const c of CATEGORIES) {
    const outcomes = Object.entries(report.outcomes[c])
      .sort((a, b) => b[1] - a[1])
      .map(([what, n]) => `${what} ${n}`)
      .join(", ");
    const n = report.iterations[c];
    const cost = n > 0 && report.busyMs[c] > 0
      ? ` (${Math.round((report.busyMs[c] * 1000) / n)} µs each)`
      : "";
    lines.push(`  ${c.padEnd(12)} ${String(n).padStart(8)}${cost}  ${outcomes}`);
  }
  const { live } = report;
  const replies = Object.entries(live.replyTypes).sort((a, b) => b[1] - a[1]);
  lines.push(
    "",
    `  server replies on sealed connections: ${
      replies.map(([type, n]) => `${type} ${n}`).join(", ") || "none"
    }`,
  );
  lines.push(
    "",
    `  health: ${live.pings} pings from a separate client, slowest ${live.slowestPingMs} ms`,
  );
  if (live.fdBaseline !== null) {
    lines.push(
      `  descriptors: ${live.fdBaseline} at the start, at most ${live.fdMax}, ${live.fdEnd} at the end`,
    );
  }
  if (live.skippedSettings.length > 0) {
    lines.push(`  settings this config does not have: ${live.skippedSettings.join(", ")}`);
  }
  lines.push("", `  failures: ${report.failures}`);
  for (const f of report.failure_examples) {
    lines.push(
      "",
      `  [${f.category} #${f.iteration}, seed ${f.seed}] ${f.error}`,
      `    input (${f.input_bytes} bytes): ${f.input_hex.slice(0, 400)}${
        f.input_hex.length > 400 ? "…" : ""
      }`,
    );
  }
  return lines.join("\n");
}

function parseSeed(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new Error(`--seed must be an integer from 0 to 4294967295, got "${raw}"`);
  }
  return n;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "10" },
      seed: { type: "string" },
      json: { type: "boolean", default: false },
      concurrency: { type: "string", default: "8" },
      replay: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno run -A scripts/fuzz.ts [--seconds N] [--seed S] [--json] [--concurrency C]\n" +
        "       deno run -A scripts/fuzz.ts --seed S --replay CATEGORY:ITERATION",
    );
    Deno.exit(0);
  }
  if (values.replay !== undefined) {
    const [category, iteration] = values.replay.split(":");
    if (
      values.seed === undefined ||
      !(DECODER_CATEGORIES as readonly string[]).includes(category) ||
      !/^\d+$/.test(iteration ?? "")
    ) {
      console.error(
        `--replay takes ${DECODER_CATEGORIES.join("|")}:ITERATION, with the run's --seed`,
      );
      Deno.exit(2);
    }
    const result = replay(
      category as DecoderCategory,
      parseSeed(values.seed),
      Number(iteration),
      Number(values.concurrency),
    );
    console.log(`${values.replay}: ${result.outcome}`);
    console.log(`input (${result.input.length} bytes): ${result.input.toHex()}`);
    if (result.failure) console.log(result.failure);
    Deno.exit(result.failure ? 1 : 0);
  }
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > 50) {
    console.error("--seconds must be positive and --concurrency from 1 to 50");
    Deno.exit(2);
  }
  const seed = values.seed === undefined
    ? crypto.getRandomValues(new Uint32Array(1))[0]
    : parseSeed(values.seed);
  console.error(`fuzz: seed ${seed}, ${seconds} s`);
  const report = await fuzz({ seconds, seed, concurrency });
  if (values.json) {
    const { seconds, seed, iterations, failures, failure_examples } = report;
    console.log(JSON.stringify({ seconds, seed, iterations, failures, failure_examples }));
  } else {
    console.log(summary(report));
  }
  Deno.exit(report.failures > 0 ? 1 : 0);
}
