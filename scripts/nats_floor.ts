/**
 * The floor under the cluster bench's CPU per message: what one NATS operation of the kinds the
 * NATS store makes costs this process (the NATS client in Deno) and the three NATS servers, on
 * a fresh 3-server JetStream cluster on loopback, with R3 as the store uses.
 *
 *   deno run -A scripts/nats_floor.ts [--ops N] [--concurrency N]
 *
 * Prints one JSON line per operation kind: µs of CPU per operation in this process (user +
 * system, from /proc/self/stat) and in the NATS servers (summed), and the operations per second.
 * The kinds: a core NATS publish (a node's poke), a JetStream publish to an R3 stream (an inbox
 * copy), a KV put with an expected revision on an R3 bucket (a compare-and-set: counts, stored
 * bytes), a KV get through the leader (a record read), a stream message get by subject (an
 * inbox read) and a message delete (an acknowledged copy).
 */

import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NatsCluster } from "./nats_cluster.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ops: { type: "string", default: "3000" },
    concurrency: { type: "string", default: "10" },
  },
});
const OPS = Number(values.ops);
const CONCURRENCY = Number(values.concurrency);

const TICKS = 100;
function ticks(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

const cluster = await NatsCluster.start();
const pids = cluster.nodes.map((n) => n.process!.pid);
try {
  const nc = await connect({ servers: cluster.urls });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "floor", subjects: ["floor.*"], num_replicas: 3 });
  const kv = await new Kvm(js).create("floor", { replicas: 3, history: 1, allow_direct: false });
  const payload = new Uint8Array(200);
  const seqs: number[] = [];
  const revisions = new Map<string, number>();

  /** Runs `op(i)` OPS times, CONCURRENCY at once, and reports its CPU per operation. */
  const measure = async (kind: string, op: (i: number) => Promise<unknown>): Promise<void> => {
    const self0 = ticks("self");
    const nats0 = pids.map(ticks);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < OPS) await op(next++);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const selfUs = (ticks("self") - self0) / TICKS * 1e6 / OPS;
    const natsUs = pids.map(ticks).reduce((a, t, i) => a + t - nats0[i], 0) / TICKS * 1e6 / OPS;
    console.log(JSON.stringify({
      op: kind,
      ops: OPS,
      concurrency: CONCURRENCY,
      ops_per_s: Math.round(OPS / seconds),
      client_cpu_us_per_op: Math.round(selfUs),
      nats_cpu_us_per_op: Math.round(natsUs),
      loadavg_1m: Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]),
    }));
  };

  // Warm the client's code and the streams up first (not reported).
  for (let i = 0; i < 200; i++) await js.publish(`floor.w`, payload);
  await measure("core publish + flush", async (i) => {
    nc.publish(`poke.${i % 50}`, payload);
    if (i % CONCURRENCY === 0) await nc.flush();
  });
  await measure("JetStream publish, R3", async (i) => {
    seqs.push((await js.publish(`floor.${i % 50}`, payload)).seq);
  });
  await measure("KV put if at revision, R3", async (i) => {
    // One key per worker, as the counts keys are per user: no conflicts. Written as the store's
    // compare-and-set writes (src/store/nats/kv_records.ts writeBytesIf): a publish with the
    // expected last sequence and a message id.
    const key = `k${i % CONCURRENCY}`;
    const revision = revisions.get(key) ?? 0;
    const ack = await js.publish(`$KV.floor.${key}`, payload, {
      msgID: `${key}@${revision}`,
      expect: { lastSubjectSequence: revision },
    });
    revisions.set(key, ack.seq);
  });
  await measure("KV get (leader)", async (i) => await kv.get(`k${i % CONCURRENCY}`));
  await measure("stream get next by subject (leader)", async (i) =>
    await jsm.streams.getMessage(
      "floor",
      // As the inbox reads (src/store/nats/blobs.ts nextBySubject): the client's type leaves
      // next_by_subj to direct gets, the leader's API takes it too.
      { seq: seqs[i % seqs.length], next_by_subj: `floor.${i % 50}` } as unknown as { seq: number },
    ));
  await measure(
    "stream message delete, R3",
    async (i) => await jsm.streams.deleteMessage("floor", seqs[i], false).catch(() => false),
  );
  await nc.close();
} finally {
  await cluster.stop();
}
