/**
 * File transfers between two online users, relayed and never stored: offer → accept/deny →
 * chunks in order → the receiver's SHA-256 check. Flow control: the sender may be at most
 * `window` chunks ahead of what the receiver acknowledged, so the server holds at most that
 * much of any file, however slow the receiver.
 *
 * Slots: a user takes part in at most `maxTransfersPerUser` transfers. A sender's offers count
 * against the sender from the start; against the receiver only once accepted, so unsolicited
 * offers cannot use up a receiver's slots (each sender can have only that many offers waiting).
 */

import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import type { NamedUser } from "../store/types.ts";
import type { Hub } from "./hub.ts";

export interface FileLimits {
  chunkBytes: number;
  window: number;
  maxTransfersPerUser: number;
}

export interface Transfer {
  id: number;
  from: NamedUser;
  to: NamedUser;
  name: string;
  size: number;
  sha256: Uint8Array;
  accepted: boolean;
  /** Bytes relayed to the receiver. */
  sent: number;
  /** Bytes the receiver acknowledged. */
  acked: number;
}

export class FileRelay {
  readonly #transfers = new Map<number, Transfer>();
  #nextId: number;

  constructor(
    private readonly hub: Hub,
    readonly limits: FileLimits,
    readonly maxFileBytes: number,
    /** Where this relay's ids start: a cluster node's ids differ from every other node's. */
    idBase = 0,
  ) {
    this.#nextId = idBase + 1;
  }

  /** The slots `user` uses: transfers they send, and those they receive once accepted. */
  #count(user: string): number {
    let n = 0;
    for (const t of this.#transfers.values()) {
      if (t.from.user === user || (t.to.user === user && t.accepted)) n++;
    }
    return n;
  }

  #refuseFull(user: NamedUser): void {
    if (this.#count(user.user) >= this.limits.maxTransfersPerUser) {
      throw new ParleyError(
        ErrorCode.LIMIT_REACHED,
        `${user.name} already has ${this.limits.maxTransfersPerUser} file transfers under way`,
      );
    }
  }

  offer(from: NamedUser, to: NamedUser, name: string, size: number, sha256: Uint8Array): Transfer {
    if (size > this.maxFileBytes) {
      throw new ParleyError(ErrorCode.TOO_LARGE, `Files are limited to ${this.maxFileBytes} bytes`);
    }
    if (!this.hub.isOnline(to.user)) {
      throw new ParleyError(
        ErrorCode.USER_OFFLINE,
        `${to.name} is not online; files go only to online users`,
      );
    }
    this.#refuseFull(from);
    this.#refuseFull(to);
    const t: Transfer = {
      id: this.#nextId++,
      from,
      to,
      name,
      size,
      sha256,
      accepted: false,
      sent: 0,
      acked: 0,
    };
    this.#transfers.set(t.id, t);
    this.hub.push(to.user, MsgType.FILE_INCOMING, {
      transfer_id: t.id,
      source_username: from.name,
      name,
      size,
      sha256,
    });
    return t;
  }

  /** The transfer, if `user` takes part in it in the given role. */
  #mine(id: number, user: string, role: "from" | "to" | "either"): Transfer {
    const t = this.#transfers.get(id);
    const ok = t &&
      (role === "from"
        ? t.from.user === user
        : role === "to"
        ? t.to.user === user
        : t.from.user === user || t.to.user === user);
    if (!t || !ok) {
      throw new ParleyError(
        ErrorCode.NO_SUCH_TRANSFER,
        `No file transfer ${id} of yours is under way`,
      );
    }
    return t;
  }

  answer(id: number, user: string, accept: boolean): void | Promise<void> {
    const t = this.#mine(id, user, "to");
    if (t.accepted) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, `Transfer ${id} was already accepted`);
    }
    if (accept) {
      // The offer stays waiting: the receiver may accept it once a slot is free.
      this.#refuseFull(t.to);
      t.accepted = true;
    } else this.#transfers.delete(id);
    this.hub.push(t.from.user, MsgType.FILE_ANSWERED, { transfer_id: id, accept });
  }

  chunk(id: number, user: string, offset: number, data: Uint8Array): void {
    const t = this.#mine(id, user, "from");
    const fail = (message: string) => {
      this.end(id, `${t.from.name}'s client broke the transfer: ${message}`);
      throw new ParleyError(ErrorCode.BAD_REQUEST, message);
    };
    if (!t.accepted) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, `Transfer ${id} has not been accepted`);
    }
    if (offset !== t.sent) fail(`Chunk at offset ${offset}, expected ${t.sent}`);
    if (data.length === 0 || data.length > this.limits.chunkBytes) {
      fail(`Chunks are 1 to ${this.limits.chunkBytes} bytes`);
    }
    if (t.sent + data.length > t.size) fail(`Chunk runs past the offered size of ${t.size} bytes`);
    if (t.sent + data.length - t.acked > this.limits.window * this.limits.chunkBytes) {
      fail(`More than ${this.limits.window} chunks sent ahead of the receiver`);
    }
    if (!this.hub.isOnline(t.to.user)) {
      this.end(id, `${t.to.name} went offline`);
      throw new ParleyError(ErrorCode.USER_OFFLINE, `${t.to.name} went offline`);
    }
    this.hub.push(t.to.user, MsgType.FILE_DATA, { transfer_id: id, offset, data });
    t.sent += data.length;
  }

  ack(
    id: number,
    user: string,
    received: number,
    sha256Ok: boolean | undefined,
  ): void | Promise<void> {
    const t = this.#mine(id, user, "to");
    if (received < t.acked || received > t.sent) {
      throw new ParleyError(
        ErrorCode.BAD_REQUEST,
        `Acknowledged ${received} bytes, but ${t.sent} were sent`,
      );
    }
    t.acked = received;
    const progress: Record<string, number | boolean> = { transfer_id: id, received };
    if (sha256Ok !== undefined) progress.sha256_ok = sha256Ok;
    this.hub.push(t.from.user, MsgType.FILE_PROGRESS, progress);
    if (received === t.size && sha256Ok !== undefined) this.#transfers.delete(id);
  }

  cancel(id: number, user: string, reason: string): void | Promise<void> {
    const t = this.#mine(id, user, "either");
    const by = t.from.user === user ? t.from : t.to;
    this.end(id, reason || `${by.name} cancelled the transfer`);
  }

  /** Ends a transfer and tells both sides (those still online). */
  end(id: number, reason: string): void {
    const t = this.#transfers.get(id);
    if (!t) return;
    this.#transfers.delete(id);
    for (const side of [t.from, t.to]) {
      this.hub.push(side.user, MsgType.FILE_CANCELLED, { transfer_id: id, reason });
    }
  }

  /** Ends every transfer `user` takes part in (they went offline or were kicked). */
  endAllOf(user: string, reason: string): void {
    for (const t of [...this.#transfers.values()]) {
      if (t.from.user === user || t.to.user === user) this.end(t.id, reason);
    }
  }

  /** Ends every transfer between `a` and `b` (one blocked the other). */
  endBetween(a: string, b: string, reason: string): void {
    for (const t of [...this.#transfers.values()]) {
      const users = [t.from.user, t.to.user];
      if (users.includes(a) && users.includes(b)) this.end(t.id, reason);
    }
  }

  get active(): number {
    return this.#transfers.size;
  }
}
