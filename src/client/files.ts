/**
 * File transfers on the client side: the sender streams chunks within the flow-control window
 * the server announced; the receiver writes them, acknowledges progress, and checks SHA-256.
 */

import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import type { Value } from "../protocol/value.ts";
import { type Hasher, sameBytes } from "./platform.ts";

/** Where a sent file's bytes come from. */
export interface FileSource {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Where a received file's bytes go, in order. */
export interface FileSink {
  write(data: Uint8Array): Promise<void>;
}

export function bytesSource(data: Uint8Array): FileSource {
  return {
    size: data.length,
    read: (offset, length) => Promise.resolve(data.subarray(offset, offset + length)),
  };
}

export async function sha256Of(
  source: FileSource,
  h: Hasher,
  chunk = 1024 * 1024,
): Promise<Uint8Array> {
  for (let at = 0; at < source.size; at += chunk) {
    h.update(await source.read(at, Math.min(chunk, source.size - at)));
  }
  return await h.digest();
}

export interface TransferResult {
  transferId: number;
  size: number;
  sha256Ok: boolean;
}

export type Progress = (done: number, size: number) => void;

/** The operations a transfer needs from the client. */
export interface TransferLink {
  notify(type: number, body: Value): void;
}

/** The sending side of one accepted transfer. */
export class OutgoingTransfer {
  #acked = 0;
  #sent = 0;
  #wake: (() => void) | null = null;
  #failure: Error | null = null;
  #sha256Ok: boolean | undefined;
  readonly done: Promise<TransferResult>;
  #finish!: (r: TransferResult) => void;
  #fail!: (e: Error) => void;

  constructor(
    private readonly link: TransferLink,
    readonly transferId: number,
    private readonly source: FileSource,
    private readonly chunkBytes: number,
    private readonly window: number,
    private readonly onProgress?: Progress,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.#finish = resolve;
      this.#fail = reject;
    });
    this.done.catch(() => {});
  }

  /** Sends every chunk, never more than the window ahead of the receiver. */
  async run(): Promise<TransferResult> {
    try {
      while (this.#sent < this.source.size) {
        while (!this.#failure && this.#sent - this.#acked >= this.window * this.chunkBytes) {
          await this.#changed();
        }
        if (this.#failure) throw this.#failure;
        const length = Math.min(this.chunkBytes, this.source.size - this.#sent);
        const data = await this.source.read(this.#sent, length);
        this.link.notify(MsgType.FILE_CHUNK, {
          transfer_id: this.transferId,
          offset: this.#sent,
          data,
        });
        this.#sent += length;
      }
      while (this.#sha256Ok === undefined && !this.#failure) await this.#changed();
      if (this.#failure) throw this.#failure;
      const result = {
        transferId: this.transferId,
        size: this.source.size,
        sha256Ok: this.#sha256Ok!,
      };
      this.#finish(result);
      return result;
    } catch (e) {
      this.#fail(e as Error);
      throw e;
    }
  }

  #changed(): Promise<void> {
    if (this.#failure) return Promise.resolve();
    return new Promise((resolve) => this.#wake = resolve);
  }

  progress(received: number, sha256Ok: boolean | undefined): void {
    this.#acked = received;
    if (sha256Ok !== undefined) this.#sha256Ok = sha256Ok;
    this.onProgress?.(received, this.source.size);
    this.#wake?.();
  }

  cancelled(reason: string): void {
    this.#failure = new ParleyError(ErrorCode.NO_SUCH_TRANSFER, `Transfer cancelled: ${reason}`);
    this.#wake?.();
  }
}

/** The receiving side of one accepted transfer. */
export class IncomingTransfer {
  #received = 0;
  readonly done: Promise<TransferResult>;
  #finish!: (r: TransferResult) => void;
  #fail!: (e: Error) => void;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly link: TransferLink,
    private readonly hash: Hasher,
    readonly transferId: number,
    readonly size: number,
    private readonly sha256: Uint8Array,
    private readonly sink: FileSink,
    private readonly onProgress?: Progress,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.#finish = resolve;
      this.#fail = reject;
    });
    this.done.catch(() => {});
  }

  /** Called once the offer is accepted: an empty file is complete at once. */
  start(): void {
    if (this.size === 0) void this.#complete();
  }

  data(offset: number, data: Uint8Array): void {
    if (offset !== this.#received) {
      this.#abort(`Data at offset ${offset}, expected ${this.#received}`);
      return;
    }
    this.#received += data.length;
    this.hash.update(data);
    // Writes stay in order; each acknowledgement goes out once its bytes are written.
    this.#writing = this.#writing.then(async () => {
      await this.sink.write(data);
      const received = offset + data.length;
      this.onProgress?.(received, this.size);
      if (received === this.size) await this.#complete();
      else this.link.notify(MsgType.FILE_ACK, { transfer_id: this.transferId, received });
    }).catch((e) => this.#abort(`Cannot write the file: ${(e as Error).message}`));
  }

  async #complete(): Promise<void> {
    const ok = sameBytes(await this.hash.digest(), this.sha256);
    this.link.notify(MsgType.FILE_ACK, {
      transfer_id: this.transferId,
      received: this.size,
      sha256_ok: ok,
    });
    this.#finish({ transferId: this.transferId, size: this.size, sha256Ok: ok });
  }

  #abort(reason: string): void {
    this.link.notify(MsgType.FILE_CANCEL, { transfer_id: this.transferId, reason });
    this.#fail(new ParleyError(ErrorCode.BAD_REQUEST, reason));
  }

  cancelled(reason: string): void {
    this.#fail(new ParleyError(ErrorCode.NO_SUCH_TRANSFER, `Transfer cancelled: ${reason}`));
  }
}
