/**
 * While JetStream cannot be reached (a NATS server gone mid-request, no leader during a
 * failover), a request's failure tells the user to try again in a few seconds, and is logged as a
 * warning, not as the server's fault. The errors are the NATS client's own, made for real.
 */

import assert from "node:assert/strict";
import { connectCluster } from "../../src/cluster/connect.ts";
import { JetStreamApiError, RequestError } from "../../src/cluster/nats.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { errorBody, STORE_UNAVAILABLE } from "../../src/server/dispatch.ts";
import { createLogger } from "../../src/server/log.ts";
import type { Session } from "../../src/server/session.ts";
import { natsUnavailable } from "../../src/store/nats/unavailable.ts";
import { natsTest } from "../helpers/nats.ts";

natsTest(
  "a store that cannot be reached for now is told as such, other failures are not",
  async (cluster) => {
    const nc = await connectCluster([cluster.urls[0]], { name: "parley-test-unavailable" });
    nc.subscribe("unavailable.silent"); // takes requests, never answers
    const timedOut = await nc.request("unavailable.silent", "", { timeout: 100 }).catch((e) => e);
    const unanswered = await nc.request("unavailable.nobody", "", { timeout: 2000 }).catch((e) =>
      e
    );
    await nc.close();
    const closed = await nc.request("unavailable.silent", "").catch((e) => e);
    const noLeader = new JetStreamApiError({
      code: 503,
      err_code: 10008,
      description: "JetStream system temporarily unavailable",
    });
    for (const e of [timedOut, unanswered, closed, noLeader]) {
      assert.ok(natsUnavailable(e), `${e}`);
    }
    const conflict = new JetStreamApiError({
      code: 400,
      err_code: 10071,
      description: "wrong last sequence",
    });
    assert.ok(!natsUnavailable(conflict), "a lost compare-and-set is not an outage");
    assert.ok(
      !natsUnavailable(new RequestError("permissions violation", { cause: new Error("denied") })),
      "a refused request is not an outage",
    );
    assert.ok(!natsUnavailable(new Error("bug")));

    const lines: string[] = [];
    const ctx = {
      store: { unavailable: natsUnavailable },
      log: createLogger({ write: (l) => lines.push(l) }),
    } as unknown as ServerContext;
    const session = { id: 7 } as unknown as Session;
    assert.deepEqual(errorBody(ctx, session, MsgType.SEND, timedOut), {
      code: ErrorCode.INTERNAL,
      message: STORE_UNAVAILABLE,
    });
    assert.match(lines.join("\n"), /WARN +handler\.store_unavailable type=SEND/);
    assert.deepEqual(errorBody(ctx, session, MsgType.SEND, new Error("bug")), {
      code: ErrorCode.INTERNAL,
      message: "The server failed to handle this request",
    });
    assert.match(lines.at(-1)!, /ERROR +handler\.failed/);
  },
);
