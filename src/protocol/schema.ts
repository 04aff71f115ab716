/**
 * A small schema language for message bodies: each schema checks a decoded Value and narrows
 * its TypeScript type, so handlers only ever see well-typed bodies.
 */

import { SchemaError } from "./errors.ts";
import type { Value } from "./value.ts";

export interface Schema<T> {
  /** A short description for error messages ("str", "list[str]"). */
  readonly describe: string;
  /**
   * Returns the value typed, or throws SchemaError naming the path of the first problem;
   * `path` is where `v` sits, for that message.
   */
  check(v: Value, path?: string): T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function fail(path: string | undefined, want: string, v: Value): never {
  throw new SchemaError(path ?? "", `must be ${want}, got ${kindOf(v)}`);
}

/** Checks a container's part; a failure gets `outer` (its place in the container) prepended. */
function checkPart<T>(schema: Schema<T>, v: Value, outer: string | number, path = ""): T {
  try {
    return schema.check(v);
  } catch (e) {
    if (e instanceof SchemaError) {
      e.within(typeof outer === "number" ? `${path}[${outer}]` : `${path}.${outer}`);
    }
    throw e;
  }
}

/** The wire kind of a decoded value, for error messages. */
export function kindOf(v: Value): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "list";
  if (v instanceof Uint8Array) return "bytes";
  if (v instanceof Date) return "datetime";
  if (typeof v === "number") return "int";
  if (typeof v === "string") return "str";
  if (typeof v === "boolean") return "bool";
  return "dict";
}

function isDict(v: Value): v is { [key: string]: Value } {
  return kindOf(v) === "dict";
}

export const nul: Schema<null> = {
  describe: "null",
  check: (v, path) => v === null ? null : fail(path, "null", v),
};

export const bool: Schema<boolean> = {
  describe: "bool",
  check: (v, path) => typeof v === "boolean" ? v : fail(path, "bool", v),
};

export function int(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Schema<number> {
  const want = `an int from ${min} to ${max}`;
  return {
    describe: "int",
    check: (v, path) => typeof v === "number" && v >= min && v <= max ? v : fail(path, want, v),
  };
}

/** A string; lengths are in UTF-16 code units after decoding (bounded by the frame anyway). */
export function str(min = 0, max = Number.MAX_SAFE_INTEGER): Schema<string> {
  const want = `a str of ${min} to ${max} characters`;
  return {
    describe: "str",
    check: (v, path) =>
      typeof v === "string" && v.length >= min && v.length <= max ? v : fail(path, want, v),
  };
}

export function bytes(max = Number.MAX_SAFE_INTEGER, min = 0): Schema<Uint8Array> {
  const want = min === max ? `exactly ${max} bytes` : `bytes of ${min} to ${max}`;
  return {
    describe: "bytes",
    check: (v, path) =>
      v instanceof Uint8Array && v.length >= min && v.length <= max ? v : fail(path, want, v),
  };
}

export const datetime: Schema<Date> = {
  describe: "datetime",
  check: (v, path) => v instanceof Date ? v : fail(path, "datetime", v),
};

export function list<T>(item: Schema<T>, max = Number.MAX_SAFE_INTEGER): Schema<T[]> {
  const want = `list[${item.describe}] of at most ${max} items`;
  return {
    describe: `list[${item.describe}]`,
    check: (v, path) => {
      if (!Array.isArray(v) || v.length > max) fail(path, want, v);
      const out = new Array<T>(v.length);
      for (let i = 0; i < v.length; i++) out[i] = checkPart(item, v[i], i, path);
      return out;
    },
  };
}

type TupleOf<S extends readonly Schema<unknown>[]> = { -readonly [K in keyof S]: Infer<S[K]> };

/**
 * A list with one schema per position, as seed 000 uses for `[username, password]`. Trailing
 * optional positions may be left out (a later protocol addition that old clients omit).
 */
export function tuple<const S extends readonly Schema<unknown>[]>(...items: S): Schema<TupleOf<S>> {
  const describe = `[${items.map((s) => s.describe).join(", ")}]`;
  let min = items.length;
  while (min > 0 && "optional" in items[min - 1]) min--;
  return {
    describe,
    check: (v, path) => {
      if (!Array.isArray(v) || v.length < min || v.length > items.length) fail(path, describe, v);
      return items.map((s, i) =>
        checkPart(s, i < v.length ? v[i] : (undefined as unknown as Value), i, path)
      ) as TupleOf<S>;
    },
  };
}

/** A dict, or else another schema (a str or null body that later gained a dict form). */
export function dictOr<D, O>(dictSchema: Schema<D>, other: Schema<O>): Schema<D | O> {
  return {
    describe: `${other.describe} or ${dictSchema.describe}`,
    check: (v, path) => isDict(v) ? dictSchema.check(v, path) : other.check(v, path),
  };
}

/** Marks a dict field as optional: absent (or null) reads as undefined. */
export interface Optional<T> extends Schema<T | undefined> {
  readonly optional: true;
}

export function optional<T>(inner: Schema<T>): Optional<T> {
  return {
    describe: `${inner.describe}?`,
    optional: true,
    check: (v, path) => v === null || v === undefined ? undefined : inner.check(v, path),
  };
}

type DictOf<F extends Record<string, Schema<unknown>>> = {
  [K in keyof F]: Infer<F[K]>;
};

/** A dict with known fields; unknown fields are ignored so that newer clients stay compatible. */
export function dict<F extends Record<string, Schema<unknown>>>(fields: F): Schema<DictOf<F>> {
  const describe = `{${Object.keys(fields).join(", ")}}`;
  // Listed once here rather than on every message checked.
  const keys = Object.keys(fields);
  const schemas = keys.map((k) => fields[k]);
  const required = schemas.map((schema) => !("optional" in schema));
  return {
    describe,
    check: (v, path) => {
      if (!isDict(v)) fail(path, `a dict ${describe}`, v);
      const out: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        const present = Object.hasOwn(v, key);
        if (!present && required[i]) {
          throw new SchemaError(path ?? "", `is missing the field "${key}"`);
        }
        out[key] = checkPart(
          schemas[i],
          present ? v[key] : (undefined as unknown as Value),
          key,
          path,
        );
      }
      return out as DictOf<F>;
    },
  };
}

/** Accepts any value unchanged (for bodies whose content is not inspected). */
export const any: Schema<Value> = { describe: "any", check: (v) => v };
