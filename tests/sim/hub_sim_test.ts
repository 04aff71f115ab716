/** The cluster hub's seeded simulation (hub_sim.ts) over a fixed set of seeds. */

import { simulateHub } from "./hub_sim.ts";

Deno.test("hub simulation: 60 seeds of logins, logouts, lost and reordered news, cut-off and dead nodes converge", async () => {
  for (let seed = 1; seed <= 60; seed++) await simulateHub(seed, 600);
});
