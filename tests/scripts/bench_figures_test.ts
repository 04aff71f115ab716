/**
 * The figures the bench derives from raw readings (scripts/bench_figures.ts, and the load
 * processes' per-pair times in scripts/bench_load.ts): unread input read from a /proc/net/tcp
 * table, the relay pairs' spread, CPU per operation.
 */

import assert from "node:assert/strict";
import {
  pairFigures,
  pairNodes,
  rotate,
  sumCpu,
  unreadAt,
  unreadFigures,
  usPerOp,
} from "../../scripts/bench_figures.ts";
import { pairSpread, type SendPlan } from "../../scripts/bench_load.ts";

// Port 37569 is 0x92C1. Rows: the listener (with a backlog), two server sockets with unread
// bytes (0x100 and 0x20), one without, a client socket whose remote port is the server's (its
// own unread bytes are the client's, not the server's), and another server's socket.
const TABLE = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0100007F:92C1 00000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 1 1",
  "   1: 0100007F:92C1 0100007F:EC24 01 00000000:00000100 00:00000000 00000000     0        0 2 1",
  "   2: 0100007F:92C1 0100007F:EC25 01 00000010:00000020 00:00000000 00000000     0        0 3 1",
  "   3: 0100007F:92C1 0100007F:EC26 01 00000000:00000000 00:00000000 00000000     0        0 4 1",
  "   4: 0100007F:EC24 0100007F:92C1 01 00000000:00004000 00:00000000 00000000     0        0 5 1",
  "   5: 0100007F:192C 0100007F:EC27 01 00000000:00000777 00:00000000 00000000     0        0 6 1",
  "",
].join("\n");

Deno.test("unreadAt() counts the server's connected sockets with unread bytes, by local port", () => {
  assert.deepEqual(unreadAt(TABLE, 0x92C1), { sockets: 2, bytes: 0x100 + 0x20 });
  // The other server's one socket (its port in lower-case hex would not match: /proc prints
  // upper case).
  assert.deepEqual(unreadAt(TABLE, 0x192C), { sockets: 1, bytes: 0x777 });
  assert.deepEqual(unreadAt(TABLE, 1), { sockets: 0, bytes: 0 });
});

Deno.test("unreadFigures() gives the samples' maxima and means, and nothing without samples", () => {
  assert.equal(unreadFigures([]), null);
  assert.deepEqual(
    unreadFigures([{ sockets: 0, bytes: 0 }, { sockets: 3, bytes: 900 }, {
      sockets: 1,
      bytes: 100,
    }]),
    {
      unread_samples: 3,
      unread_sockets_max: 3,
      unread_sockets_mean: 1.3,
      unread_bytes_max: 900,
      unread_bytes_mean: 333,
    },
  );
});

Deno.test("pairFigures() gives completion's median, p90, max and max/median, and the first messages' spread", () => {
  // Ten pairs done at 100..1000 ms; one pair never got a message.
  const last = [...Array(10).keys()].map((i) => (i + 1) * 100);
  const first = [5, 10, 20, 30, 40, 50, 60, 70, 80, 250];
  const f = pairFigures([...first, null], [...last, null]);
  assert.equal(f.pair_count, 11);
  assert.equal(f.pair_without_message, 1);
  assert.equal(f.pair_done_ms_p50, 600); // the nearest rank below: the 6th of 10
  assert.equal(f.pair_done_ms_p90, 1000);
  assert.equal(f.pair_done_ms_max, 1000);
  assert.equal(f.pair_done_ratio, round2(1000 / 600));
  assert.equal(f.pair_first_ms_p50, 50);
  assert.equal(f.pair_first_ms_max, 250);
  assert.equal(f.pair_first_over_100ms, 1);
});

const round2 = (x: number) => Math.round(x * 100) / 100;

Deno.test("pairSpread() times each pair whose receiver is in this process from its go", () => {
  const sends: SendPlan[] = [
    { from: "s1", to: { user: "r1" }, count: 3 },
    { from: "s2", to: { user: "r2" }, count: 3 },
    { from: "s3", to: { user: "r3" }, count: 3 }, // r3 is in another process
    { from: "s4", to: { group: 7 }, count: 3 }, // not a pair
  ];
  const arrivals = new Map([["r1", { first: 1010, last: 1500 }]]);
  const spread = pairSpread(sends, new Set(["s1", "r1", "s2", "r2"]), arrivals, 1000);
  // r2 got nothing: null, not left out, so that the bench counts it.
  assert.deepEqual(spread, { firstMs: [10, null], lastMs: [500, null] });
});

Deno.test("usPerOp() divides CPU seconds over operations, and gives null without either", () => {
  assert.equal(usPerOp(0.5, 100_000), 5);
  assert.equal(usPerOp(null, 100), null);
  assert.equal(usPerOp(0.5, 0), null);
});

Deno.test("pairNodes() puts each pair's receiver on the node after its sender's, round the nodes", () => {
  assert.deepEqual([0, 1, 2, 3].map((i) => pairNodes(i, 3)), [
    { sender: 0, receiver: 1 },
    { sender: 1, receiver: 2 },
    { sender: 2, receiver: 0 },
    { sender: 0, receiver: 1 },
  ]);
  // With more than one node, the two ends of a pair are never on the same node.
  for (const n of [2, 3, 5]) {
    for (let i = 0; i < 10; i++) {
      const at = pairNodes(i, n);
      assert.notEqual(at.sender, at.receiver);
    }
  }
  assert.deepEqual(pairNodes(7, 1), { sender: 0, receiver: 0 });
});

Deno.test("rotate() starts the list at the given index; sumCpu() is null when a reading is", () => {
  assert.deepEqual(rotate(["a", "b", "c"], 0), ["a", "b", "c"]);
  assert.deepEqual(rotate(["a", "b", "c"], 1), ["b", "c", "a"]);
  assert.deepEqual(rotate(["a", "b", "c"], 5), ["c", "a", "b"]);
  assert.equal(sumCpu([0.5, 0.25]), 0.75);
  assert.equal(sumCpu([]), 0);
  assert.equal(sumCpu([0.5, null]), null);
});
