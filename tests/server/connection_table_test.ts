/** ConnectionTable without sockets: the total and per-address caps, release, the IPv6 prefix key. */

import assert from "node:assert/strict";
import { ConnectionTable } from "../../src/server/connection_table.ts";

class FakeConn {
  closed = false;
  close(): void {
    this.closed = true;
  }
}

function table(maxConnections: number, maxConnectionsPerIp: number) {
  return new ConnectionTable<FakeConn>({ maxConnections, maxConnectionsPerIp, ipv6PrefixBits: 64 });
}

Deno.test("ConnectionTable: the total cap refuses the next connection; a release lets one in", () => {
  const t = table(3, 10);
  const conns = Array.from({ length: 3 }, () => new FakeConn());
  conns.forEach((c, i) => assert.ok(t.admit(c, `10.0.0.${i}`), `connection ${i} admitted`));
  assert.equal(t.size, 3);
  const late = new FakeConn();
  assert.ok(!t.admit(late, "10.0.0.9"), "a fourth is refused");
  assert.equal(t.size, 3, "a refused connection does not count");
  assert.equal(t.countFrom("10.0.0.9"), 0);
  t.release(conns[1]);
  assert.equal(t.size, 2);
  assert.ok(t.admit(late, "10.0.0.9"), "admitted once a slot is free");
});

Deno.test("ConnectionTable: the per-address cap counts each address apart, and a release frees its own", () => {
  const t = table(100, 2);
  const a = [new FakeConn(), new FakeConn(), new FakeConn()];
  assert.ok(t.admit(a[0], "10.0.0.1"));
  assert.ok(t.admit(a[1], "10.0.0.1"));
  assert.ok(!t.admit(a[2], "10.0.0.1"), "a third from one address is refused");
  assert.equal(t.countFrom("10.0.0.1"), 2);
  const b = new FakeConn();
  assert.ok(t.admit(b, "10.0.0.2"), "another address still gets in");
  t.release(b);
  assert.equal(t.countFrom("10.0.0.2"), 0);
  assert.ok(!t.admit(a[2], "10.0.0.1"), "another address's release frees nothing here");
  t.release(a[0]);
  assert.equal(t.countFrom("10.0.0.1"), 1);
  assert.ok(t.admit(a[2], "10.0.0.1"), "its own release lets the third in");
  t.release(a[1]);
  t.release(a[2]);
  assert.equal(t.countFrom("10.0.0.1"), 0);
  assert.equal(t.size, 0);
});

Deno.test("ConnectionTable: IPv6 peers in one /64 share a count; another /64 has its own", () => {
  const t = table(100, 1);
  const one = t.keyOf("2001:db8:1:2::5");
  assert.equal(t.keyOf("2001:db8:1:2:ffff::1"), one, "the same /64, the same key");
  assert.notEqual(t.keyOf("2001:db8:1:3::5"), one);
  assert.equal(t.keyOf("192.0.2.7"), "192.0.2.7", "an IPv4 address is its own key");
  assert.ok(t.admit(new FakeConn(), one));
  assert.ok(!t.admit(new FakeConn(), t.keyOf("2001:db8:1:2:ffff::1")), "a second host in the /64");
  assert.ok(t.admit(new FakeConn(), t.keyOf("2001:db8:1:3::5")), "the next /64 gets in");
});

Deno.test("ConnectionTable: admitting one connection twice or releasing one not open is a broken invariant", () => {
  const t = table(10, 10);
  const c = new FakeConn();
  assert.throws(() => t.release(c), /invariant broken/);
  assert.ok(t.admit(c, "10.0.0.1"));
  assert.throws(() => t.admit(c, "10.0.0.1"), /invariant broken/);
  t.release(c);
  assert.throws(() => t.release(c), /invariant broken/, "a second release");
  assert.equal(t.countFrom("10.0.0.1"), 0);
});

Deno.test("ConnectionTable: closeAll closes the open connections, and they count until released", () => {
  const t = table(10, 10);
  const open = [new FakeConn(), new FakeConn()];
  const gone = new FakeConn();
  for (const c of [...open, gone]) assert.ok(t.admit(c, "10.0.0.1"));
  t.release(gone);
  t.closeAll();
  assert.ok(open.every((c) => c.closed), "every open connection closed");
  assert.ok(!gone.closed, "a released one is not the table's to close");
  assert.equal(t.size, 2, "closing is not releasing: serving ends first");
});
