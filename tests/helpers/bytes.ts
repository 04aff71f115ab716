/** Byte helpers shared by the tests: the fuzzer's, so that there is one copy. */

export { concat } from "../../scripts/fuzz_inputs.ts";
