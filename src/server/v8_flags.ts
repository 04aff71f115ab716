/**
 * V8 settings of every Parley process, server and client alike. V8 reads them only when the
 * process starts, so they are passed on the command line: `deno task start` (deno.json), the
 * compiled binary (`deno compile --v8-flags`, scripts/compile.ts), and the children of the tests
 * and the bench. deno.json cannot import this list; a test checks that its copy is the same.
 *
 * - `--memory-reducer-delay-ms`: after a burst (thousands of logins) V8 keeps its heap at the size
 *   the burst grew it to, garbage included (2–3 times the live heap), until its memory reducer
 *   finds the process quiet and runs a compacting GC that gives the pages back. The reducer first
 *   looks 8 s after a full GC by default, and again 8 s later while allocation is still fast, so
 *   an idle server kept that garbage for 10–20 s. It never runs while allocation is fast, so a
 *   busy server does not pay for looking more often.
 *
 * - `--expose-gc`: gives the server V8's `gc` function, which the idle collector
 *   (src/server/idle_collector.ts) calls once the server goes quiet after a burst. The reducer
 *   above starts only after a full GC, which an idle server may never make.
 *
 * A bound on the young generation (`--max-semi-space-size=4`) halved RSS per idle connection
 * further, but cost 20-35 % more server CPU per message in relay and at fixed rates (alternating
 * runs), so it is not set.
 */
export const V8_FLAGS: readonly string[] = [
  "--memory-reducer-delay-ms=1000",
  "--expose-gc",
];

/** The Deno argument that passes `V8_FLAGS`. */
export const V8_FLAGS_ARG = `--v8-flags=${V8_FLAGS.join(",")}`;
