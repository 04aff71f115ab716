import assert from "node:assert/strict";
import { ACK_EVERY, ACK_INTERVAL_MS, CumulativeAck } from "../../src/client/acks.ts";

const turn = () => new Promise((r) => setTimeout(r, 0));

function acker() {
  let now = 1000;
  const sent: number[] = [];
  const acks = new CumulativeAck((seq) => sent.push(seq), () => now);
  return { acks, sent, advance: (ms: number) => now += ms };
}

Deno.test("CumulativeAck: the first PASS after a quiet spell is acknowledged in its own turn", async () => {
  const { acks, sent } = acker();
  acks.ack(1);
  acks.ack(2);
  assert.deepEqual(sent, []);
  await Promise.resolve();
  assert.deepEqual(sent, [2], "one ACK for the turn's two messages");
  acks.stop();
});

Deno.test("CumulativeAck: PASSes that keep coming share one ACK per interval", async () => {
  const { acks, sent, advance } = acker();
  acks.ack(1);
  await turn();
  // Four more within the interval: none is acknowledged until it has passed since the last ACK.
  for (let seq = 2; seq <= 5; seq++) {
    advance(4);
    acks.ack(seq);
    await turn();
  }
  assert.deepEqual(sent, [1]);
  advance(ACK_INTERVAL_MS);
  await new Promise((r) => setTimeout(r, ACK_INTERVAL_MS + 5));
  assert.deepEqual(sent, [1, 5], "the highest seq, once");
  acks.stop();
});

Deno.test("CumulativeAck: ACK_EVERY waiting messages are acknowledged at once", async () => {
  const { acks, sent, advance } = acker();
  acks.ack(1);
  await turn();
  advance(1);
  for (let seq = 2; seq < 1 + ACK_EVERY; seq++) acks.ack(seq);
  await turn();
  assert.deepEqual(sent, [1], "fewer than ACK_EVERY wait for the interval");
  acks.ack(1 + ACK_EVERY);
  await Promise.resolve();
  assert.deepEqual(sent, [1, 1 + ACK_EVERY]);
  acks.stop();
});

Deno.test("CumulativeAck: stop drops a pending ACK and leaves no timer behind", async () => {
  const { acks, sent, advance } = acker();
  acks.ack(1);
  await turn();
  advance(1);
  acks.ack(2); // waits for the interval on a timer, which stop() must clear (the test's sanitizer)
  acks.stop();
  acks.ack(3);
  await new Promise((r) => setTimeout(r, ACK_INTERVAL_MS + 5));
  assert.deepEqual(sent, [1]);
});

Deno.test("CumulativeAck: reset sends what waits, then a new session's seqs count afresh", async () => {
  const { acks, sent, advance } = acker();
  acks.ack(5);
  await turn();
  advance(1);
  acks.ack(6); // waits for the interval
  acks.reset(); // a LOGOUT: the waiting ACK goes first, then the next account starts at seq 1
  assert.deepEqual(sent, [5, 6]);
  advance(ACK_INTERVAL_MS);
  acks.ack(1);
  await Promise.resolve();
  assert.deepEqual(sent, [5, 6, 1], "the next account's seq 1 is acknowledged");
  acks.stop();
});
