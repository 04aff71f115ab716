/**
 * What the store contract needs of an implementation, and the fixtures its tests share. The
 * tests see a store only through src/store/types.ts: no KV, no internals.
 */

import { ManualClock } from "../../../src/clock/clock.ts";
import type { Clock } from "../../../src/clock/clock.ts";
export { HASH } from "../../helpers/password_hash.ts";
import type { ChatMessage, NamedUser, Store } from "../../../src/store/types.ts";

export interface StoreOpenOptions {
  /** The clock of deferred commits and of token and invite expiry. */
  clock: Clock;
  /** World room messages kept. */
  worldBacklog: number;
}

/** One store's data, which can be opened, closed and opened again. */
export interface StoreSite {
  /** Opens a store over this site's data; after a close, it must find what was durable. */
  open(opts: StoreOpenOptions): Promise<Store>;
  /** Deletes the data (every store opened on it is closed by then). */
  dispose(): Promise<void>;
}

/** Makes a fresh, empty site for each test. */
export type StoreFactory = () => Promise<StoreSite>;

export interface ContractContext {
  /** The store open now (another object after `reopen`). */
  readonly store: Store;
  readonly clock: ManualClock;
  /** Closes the store and opens it again over the same data, as a restart does. */
  reopen(): Promise<Store>;
}

export interface ContractOptions {
  worldBacklog?: number;
}

/** Registers one contract test, named after the implementation. */
export type ContractTest = (
  title: string,
  fn: (t: ContractContext) => Promise<void>,
  opts?: ContractOptions,
) => void;

/** What Deno.test is told besides the name and function (a store's sanitizers, a skip). */
export type TestOptions = Omit<Deno.TestDefinition, "name" | "fn">;

export function contractTest(
  name: string,
  factory: StoreFactory,
  testOptions: TestOptions = {},
): ContractTest {
  return (title, fn, opts = {}) =>
    Deno.test({ name: `${name} store: ${title}`, ...testOptions }, async () => {
      const site = await factory();
      const clock = new ManualClock();
      const open = { clock, worldBacklog: opts.worldBacklog ?? 100 };
      let store: Store | null = null;
      try {
        store = await site.open(open);
        await fn({
          get store() {
            return store!;
          },
          clock,
          async reopen() {
            const closing = store!;
            store = null;
            await closing.close();
            store = await site.open(open);
            return store;
          },
        });
      } finally {
        await store?.close();
        await site.dispose();
      }
    });
}

export const ANN: NamedUser = { user: "ann", name: "Ann" };
export const BEN: NamedUser = { user: "ben", name: "ben" };
export const CY: NamedUser = { user: "cy", name: "Cy" };

export const people = (n: number): NamedUser[] =>
  Array.from({ length: n }, (_, i) => ({ user: `u${i}`, name: `U${i}` }));

export function text(from: string, t: string, to?: string): ChatMessage {
  return {
    id: crypto.getRandomValues(new Uint8Array(16)),
    time: new Date(),
    from,
    ...(to === undefined ? {} : { to }),
    kind: "text",
    text: t,
  };
}

export function image(from: string, bytes: number, fill = 1): ChatMessage {
  return {
    id: crypto.getRandomValues(new Uint8Array(16)),
    time: new Date(),
    from,
    kind: "image",
    image: new Uint8Array(bytes).fill(fill),
  };
}
