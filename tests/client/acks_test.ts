import assert from "node:assert/strict";
import { CumulativeAck } from "../../src/client/acks.ts";

Deno.test("CumulativeAck: one ACK per turn names the turn's highest seq", async () => {
  const sent: number[] = [];
  const acks = new CumulativeAck((seq) => sent.push(seq));
  acks.ack(1);
  acks.ack(3);
  acks.ack(2);
  assert.deepEqual(sent, []);
  await Promise.resolve();
  assert.deepEqual(sent, [3]);
  acks.stop();
});

Deno.test("CumulativeAck: reset sends what waits, then a new session's seqs count afresh", async () => {
  const sent: number[] = [];
  const acks = new CumulativeAck((seq) => sent.push(seq));
  acks.ack(5);
  await Promise.resolve();
  acks.ack(6);
  acks.reset(); // a LOGOUT: the waiting ACK goes first, then the next account starts at seq 1
  assert.deepEqual(sent, [5, 6]);
  acks.ack(1);
  await Promise.resolve();
  assert.deepEqual(sent, [5, 6, 1], "the next account's seq 1 is acknowledged");
  acks.stop();
  acks.ack(2);
  await Promise.resolve();
  assert.deepEqual(sent, [5, 6, 1], "nothing after stop");
});
