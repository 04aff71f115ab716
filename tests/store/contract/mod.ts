/**
 * The store contract: what handlers rely on of any Store, as tests that every implementation
 * must pass. An implementation runs it with a factory of fresh stores, e.g.
 * `storeContract("kv", kvFactory)` in tests/store/kv_contract_test.ts.
 */

import { accountsContract } from "./accounts.ts";
import { contractTest, type StoreFactory, type TestOptions } from "./harness.ts";
import { inboxContract } from "./inbox.ts";
import { socialContract } from "./social.ts";
import { worldContract } from "./world.ts";

export type { StoreFactory, StoreOpenOptions, StoreSite } from "./harness.ts";

export function storeContract(
  name: string,
  factory: StoreFactory,
  testOptions: TestOptions = {},
): void {
  const test = contractTest(name, factory, testOptions);
  accountsContract(test);
  socialContract(test);
  inboxContract(test);
  worldContract(test);
}
