/**
 * `deno task sim`: the delivery simulation over many seeds.
 *   --seeds N   seeds to run (from --from, default 1)      --steps N   steps per seed
 *   --seed S    replay one seed                            --faults P  commit failure rate
 * Prints one JSON line of totals; a failure prints its seed, step and trace, and exits 1.
 */

import { parseArgs } from "node:util";
import { SimFailure, type SimResult, simulate } from "./delivery_sim.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "100" },
    from: { type: "string", default: "1" },
    steps: { type: "string", default: "3000" },
    seed: { type: "string" },
    faults: { type: "string" },
  },
});

const steps = Number(values.steps);
const first = values.seed !== undefined ? Number(values.seed) : Number(values.from);
const count = values.seed !== undefined ? 1 : Number(values.seeds);
const faultRate = values.faults !== undefined ? Number(values.faults) : undefined;
const started = performance.now();
const totals: Record<string, number> = {};
let failed = 0;
for (let seed = first; seed < first + count; seed++) {
  let r: SimResult;
  try {
    r = await simulate(seed, { steps, faultRate });
  } catch (e) {
    if (!(e instanceof SimFailure)) throw e;
    console.error(e.message);
    failed++;
    continue;
  }
  for (const [k, v] of Object.entries(r)) {
    if (k !== "seed" && k !== "steps") totals[k] = (totals[k] ?? 0) + v;
  }
}
console.log(JSON.stringify({
  seeds: count,
  first,
  steps,
  failed,
  seconds: Math.round((performance.now() - started) / 100) / 10,
  ...totals,
}));
if (failed > 0) Deno.exit(1);
