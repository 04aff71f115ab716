/** Deno KV with a hook on commits, to make them fail or hang in tests. */

type Commit = () => Promise<Deno.KvCommitResult | Deno.KvCommitError>;

/** A KV whose commits with a mutation on a key that `hit` picks go through `route`. */
export function routedKv(
  real: Deno.Kv,
  hit: (key: Deno.KvKey) => boolean,
  route: (commit: Commit) => ReturnType<Commit>,
): Deno.Kv {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          let routed = false;
          const mutate = op.mutate.bind(op);
          op.mutate = (...ms: Deno.KvMutation[]) => {
            if (ms.some((m) => hit(m.key))) routed = true;
            return mutate(...ms);
          };
          const commit = op.commit.bind(op);
          op.commit = () => routed ? route(commit) : commit();
          return op;
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
