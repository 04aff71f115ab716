/**
 * Content stored once for every recipient (a group's image or long text, or an image too large
 * for one inbox record): a stream `<prefix>_blob` holds each blob as chunks on a subject of its
 * own (`<prefix>.blob.<id>`), and the KV bucket `<prefix>_blobrefs` counts, per blob, the inbox
 * records that still name it. The count is written before the chunks and the records, and goes
 * down as records are deleted; the record that takes it to zero purges the chunks, then the key.
 * A node killed mid-way errs on the side of keeping: a count above the records left (killed
 * before every record was published) keeps its blob for good, never deletes one still named.
 *
 * Chunks are at most CHUNK_BYTES, so that no message comes near NATS's max_payload (1 MiB by
 * default): the store needs no server setting.
 */

import { JetStreamApiCodes, JetStreamApiError } from "../../cluster/nats.ts";
import { randomBytes } from "../../crypto/keys.ts";
import { invariant } from "../../invariant/invariant.ts";
import { CasBucket, type Codec, valueInvariant } from "./cas.ts";
import type { BlobRef } from "./codec.ts";
import type { NatsStoreContext } from "./context.ts";
import { openRecords } from "./kv_records.ts";
import { ensureStream } from "./streams.ts";

/** A quarter of NATS's default max_payload: room for headers, far from the limit. */
export const CHUNK_BYTES = 256 * 1024;

const countCodec: Codec<number> = {
  encode: (n) => new TextEncoder().encode(String(n)),
  decode: (b) => Number(new TextDecoder().decode(b)),
  empty: () => 0,
};

export class Blobs {
  readonly #stream: string;

  private constructor(
    private readonly ctx: NatsStoreContext,
    private readonly refs: CasBucket<number>,
  ) {
    this.#stream = ctx.streamName("blob");
  }

  static async open(ctx: NatsStoreContext): Promise<Blobs> {
    await ensureStream(ctx, {
      name: ctx.streamName("blob"),
      subjects: [ctx.subject("blob", "*")],
      // Never dropped to make room: a record may still name the blob.
      discard: "new",
    });
    return new Blobs(ctx, new CasBucket(await openRecords(ctx, "blobrefs"), countCodec));
  }

  #subject(id: string): string {
    return this.ctx.subject("blob", id);
  }

  /** Stores `content` for `refs` records, which must be published after this resolves. */
  async write(content: Uint8Array, text: boolean, refs: number): Promise<BlobRef> {
    invariant(refs > 0, "a blob is written for at least one record");
    const id = randomBytes(16).toHex();
    // The count first: chunks never exist without one.
    await this.refs.apply(id, (v) => ({ next: v + refs, result: undefined }));
    // Nothing of a count is kept in memory (see release).
    this.refs.forget(id);
    const subject = this.#subject(id);
    // Sent in order on one connection, so stored in order; acknowledged all together.
    const acks: Promise<unknown>[] = [];
    for (let at = 0; at === 0 || at < content.length; at += CHUNK_BYTES) {
      acks.push(this.ctx.js.publish(subject, content.subarray(at, at + CHUNK_BYTES), {
        msgID: `${id}.${at}`,
        retries: 3,
      }));
    }
    await Promise.all(acks);
    const blob: BlobRef = { id, bytes: content.length };
    if (text) blob.text = true;
    return blob;
  }

  /** The blob's content, read through the stream's leader. */
  async read(blob: BlobRef): Promise<Uint8Array> {
    const out = new Uint8Array(blob.bytes);
    const subject = this.#subject(blob.id);
    let at = 0;
    let seq = 1;
    while (at < blob.bytes) {
      const m = await this.ctx.jsm.streams.getMessage(this.#stream, nextBySubject(seq, subject));
      if (!m) break;
      if (at + m.data.length > out.length) break;
      out.set(m.data, at);
      at += m.data.length;
      seq = m.seq + 1;
    }
    if (at !== blob.bytes) throw new Error(`Blob ${blob.id} is incomplete in the store`);
    return out;
  }

  /**
   * `n` records naming the blob are deleted (or were never published): its count goes down, and
   * the blob goes with its last record.
   */
  async release(id: string, n: number): Promise<void> {
    const left = await this.refs.apply(id, (v) => {
      valueInvariant(v >= n, "a blob is released by records that named it");
      return { next: Math.max(0, v - n), result: v - n };
    });
    // Each blob's count is written a few times, mostly by other nodes: a cached value would
    // save little, and one kept per blob ever stored grows for the life of the process.
    this.refs.forget(id);
    if (left > 0) return;
    // The chunks first: a node killed before the key goes leaves a zero count and no chunks.
    await this.ctx.jsm.streams.purge(this.#stream, { filter: this.#subject(id) });
    await this.refs.kv.delete(id);
  }

  /** Records naming the blob, as counted (tests). */
  refsOf(id: string): Promise<number> {
    return this.refs.read(id);
  }
}

/** A GET of the first message on `subject` at or after `seq` (nats-server 2.9 and later). */
export function nextBySubject(seq: number, subject: string): { seq: number } {
  // The client's type leaves next_by_subj to direct gets; the leader's API takes it too.
  return { seq, next_by_subj: subject } as unknown as { seq: number };
}

/** JetStream's answer to a delete of a sequence it does not have (one server). */
const SEQUENCE_NOT_FOUND = 10043;
/** "Message delete failed", with the reason: a replicated stream says "no message found". */
const DELETE_FAILED = 10057;

/** Whether `e` says the message to delete was gone already (deleted by another copy's ACK). */
export function isGone(e: unknown): boolean {
  if (!(e instanceof JetStreamApiError)) return false;
  if (e.code === SEQUENCE_NOT_FOUND || e.code === JetStreamApiCodes.NoMessageFound) return true;
  return e.code === DELETE_FAILED && /no message found|not found/i.test(e.message);
}
