/**
 * A single server's Deno KV store read whole as a StoreImage (transfer.ts), key by key in the
 * layout of kv_keys.ts. The store must have been opened once by `openKvStore` (which upgrades
 * its schema and sweeps what a crash left half-written) and closed again: this reads the file
 * as it is, writes nothing, and takes no lock (the caller holds the data dir).
 */

import { usernameKey } from "../protocol/names.ts";
import type { BlobRef, StoredItem } from "./inbox.ts";
import {
  allOf,
  blobChunksPrefix,
  GROUP_SEQ_KEY,
  type Kind,
  membersPrefix,
  PREFIX,
} from "./kv_keys.ts";
import type {
  BlobImage,
  FamilyImage,
  GroupImage,
  InvitationImage,
  InviteImage,
  QueuedImage,
  RelationImage,
  StoreImage,
} from "./transfer.ts";
import type { ChatMessage, GroupRecord, InviteRecord, NamedUser, UserRecord } from "./types.ts";

interface StoredInvitation {
  groupName: string;
  fromUser: string;
  fromName: string;
  time: Date;
}

async function* entries<T>(kv: Deno.Kv, kind: Kind): AsyncGenerator<Deno.KvEntry<T>> {
  yield* kv.list<T>({ prefix: allOf(kind) });
}

export class KvStoreImage implements StoreImage {
  /** Display names by identity, for relations whose rows name only one side. */
  #names: Map<string, string> | null = null;

  constructor(private readonly kv: Deno.Kv) {}

  async *users(): AsyncGenerator<UserRecord> {
    for await (const e of entries<UserRecord>(this.kv, PREFIX.user)) yield e.value;
  }

  async *lookalikes(): AsyncGenerator<{ look: string; owner: string }> {
    for await (const e of entries<string>(this.kv, PREFIX.userLook)) {
      yield { look: e.key[1] as string, owner: e.value };
    }
  }

  async *families(): AsyncGenerator<FamilyImage> {
    for await (const e of entries<FamilyImage>(this.kv, PREFIX.tokenFamily)) yield e.value;
  }

  async *invites(): AsyncGenerator<InviteImage> {
    for await (const e of entries<InviteRecord>(this.kv, PREFIX.invite)) {
      yield { hash: e.key[1] as string, record: e.value };
    }
  }

  async #named(user: string, stored?: unknown): Promise<NamedUser> {
    if (this.#names === null) {
      const names = new Map<string, string>();
      for await (const u of this.users()) names.set(usernameKey(u.name), u.name);
      this.#names = names;
    }
    const name = this.#names.get(user) ?? (typeof stored === "string" ? stored : user);
    return { user, name };
  }

  async *relations(): AsyncGenerator<RelationImage> {
    // ["friend", user, other] → other's name, both ways round.
    for await (const e of entries<string>(this.kv, PREFIX.friend)) {
      const [, user, other] = e.key as [string, string, string];
      yield {
        kind: "friend",
        from: await this.#named(user),
        to: await this.#named(other, e.value),
      };
    }
    // ["friend_req", to, from] → from's name (its mirror, friend_req_out, says the same).
    for await (const e of entries<string>(this.kv, PREFIX.friendRequest)) {
      const [, to, from] = e.key as [string, string, string];
      yield { kind: "request", from: await this.#named(from, e.value), to: await this.#named(to) };
    }
    // ["block", blocker, blocked] → blocked's name (blocked_by is its mirror).
    for await (const e of entries<string>(this.kv, PREFIX.block)) {
      const [, blocker, blocked] = e.key as [string, string, string];
      yield {
        kind: "block",
        from: await this.#named(blocker),
        to: await this.#named(blocked, e.value),
      };
    }
  }

  async *groups(): AsyncGenerator<GroupImage> {
    for await (const e of entries<GroupRecord>(this.kv, PREFIX.group)) {
      const members: NamedUser[] = [];
      for await (const m of this.kv.list<string>({ prefix: membersPrefix(e.value.id) })) {
        members.push({ user: m.key[2] as string, name: m.value });
      }
      // A group goes with its last member: one without any was being deleted.
      if (members.length > 0) yield { record: e.value, members };
    }
  }

  async lastGroupId(): Promise<number> {
    return (await this.kv.get<number>(GROUP_SEQ_KEY)).value ?? 0;
  }

  async *invitations(): AsyncGenerator<InvitationImage> {
    for await (const e of entries<StoredInvitation>(this.kv, PREFIX.groupInvitation)) {
      const [, user, group] = e.key as [string, string, number];
      const v = e.value;
      yield {
        user,
        invitation: {
          group,
          groupName: v.groupName,
          from: { user: v.fromUser, name: v.fromName },
          time: v.time,
        },
      };
    }
  }

  async *queued(): AsyncGenerator<QueuedImage> {
    // ["inbox", user, seq]: users in key order, each one's rows in seq order.
    for await (const e of entries<StoredItem>(this.kv, PREFIX.inbox)) {
      const { message, size, cost, blob } = e.value;
      const item: QueuedImage = { user: e.key[1] as string, message, size, cost: cost ?? size };
      if (blob) item.blob = blobImage(blob);
      yield item;
    }
  }

  async blob(blob: BlobImage): Promise<Uint8Array | null> {
    const out = new Uint8Array(blob.bytes);
    let at = 0;
    for await (const e of this.kv.list<Uint8Array>({ prefix: blobChunksPrefix(blob.id) })) {
      if (at + e.value.length > out.length) return null;
      out.set(e.value, at);
      at += e.value.length;
    }
    return at === blob.bytes ? out : null;
  }

  async *world(): AsyncGenerator<ChatMessage> {
    // ["world", seq]: numbers order by value, so oldest first.
    for await (const e of entries<ChatMessage>(this.kv, PREFIX.world)) yield e.value;
  }
}

function blobImage(b: BlobRef): BlobImage {
  const image: BlobImage = { id: b.id, bytes: b.size };
  if (b.text) image.text = true;
  return image;
}
