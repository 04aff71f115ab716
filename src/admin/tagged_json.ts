/**
 * A lossless JSON form for what Deno KV holds, for backups: key parts (string, number, bigint,
 * boolean, Uint8Array) and structured-clone values. Plain JSON values stay as they are; every
 * other value becomes an object tagged with "$t":
 *
 *   {"$t":"undefined"}   {"$t":"number","v":"NaN"}     ("Infinity", "-Infinity", "-0")
 *   {"$t":"bigint","v":"-12"}   {"$t":"u64","v":"12"} (Deno.KvU64)
 *   {"$t":"date","v":1767225600000}                   (v is a number, tagged when NaN)
 *   {"$t":"bytes","v":"base64"}                       (Uint8Array)
 *   {"$t":"typed","type":"Float64Array","v":"base64"} (other typed arrays, ArrayBuffer)
 *   {"$t":"map","v":[[k,v],…]}   {"$t":"set","v":[…]}   {"$t":"regexp","v":"source","flags":"g"}
 *   {"$t":"hole"}                                      (a missing array element)
 *   {"$t":"object","v":{…}}  a plain object that itself has a "$t" key, so nothing is ambiguous
 *
 * Decoding checks every tag and field and throws SyntaxError on anything else.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const TYPED = {
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;
type TypedName = keyof typeof TYPED;

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function encodeNumber(n: number): Json {
  if (Object.is(n, -0)) return { $t: "number", v: "-0" };
  return Number.isFinite(n) ? n : { $t: "number", v: String(n) };
}

/** The JSON form of a structured-clone value; throws TypeError for what KV cannot hold. */
export function encodeValue(value: unknown, ancestors = new Set<object>()): Json {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return encodeNumber(value);
    case "bigint":
      return { $t: "bigint", v: value.toString() };
    case "undefined":
      return { $t: "undefined" };
    case "object":
      if (value === null) return null;
      if (ancestors.has(value)) throw new TypeError("Cannot encode a value that contains itself");
      ancestors.add(value);
      try {
        return encodeObject(value, ancestors);
      } finally {
        ancestors.delete(value);
      }
    default:
      throw new TypeError(`Cannot encode a value of type ${typeof value}`);
  }
}

function encodeObject(value: object, ancestors: Set<object>): Json {
  const inner = (v: unknown) => encodeValue(v, ancestors);
  if (value instanceof Deno.KvU64) return { $t: "u64", v: value.value.toString() };
  if (value instanceof Date) return { $t: "date", v: encodeNumber(value.getTime()) };
  if (value instanceof Uint8Array && value.constructor === Uint8Array) {
    return { $t: "bytes", v: value.toBase64() };
  }
  if (value instanceof ArrayBuffer) {
    return { $t: "typed", type: "ArrayBuffer", v: new Uint8Array(value).toBase64() };
  }
  if (ArrayBuffer.isView(value)) {
    const type = value.constructor.name;
    if (!Object.hasOwn(TYPED, type)) throw new TypeError(`Cannot encode a ${type}`);
    return { $t: "typed", type, v: bytesOf(value).toBase64() };
  }
  if (value instanceof Map) {
    return { $t: "map", v: [...value].map(([k, v]) => [inner(k), inner(v)]) };
  }
  if (value instanceof Set) return { $t: "set", v: [...value].map(inner) };
  if (value instanceof RegExp) return { $t: "regexp", v: value.source, flags: value.flags };
  if (Array.isArray(value)) {
    const out: Json[] = [];
    for (let i = 0; i < value.length; i++) out.push(i in value ? inner(value[i]) : { $t: "hole" });
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`Cannot encode a ${value.constructor?.name ?? "non-plain"} object`);
  }
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) {
    // defineProperty: a "__proto__" key must stay a key.
    Object.defineProperty(out, k, { value: inner(v), enumerable: true, writable: true });
  }
  return Object.hasOwn(out, "$t") ? { $t: "object", v: out } : out;
}

function fail(what: string): never {
  throw new SyntaxError(what);
}

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}

function expectFields(tagged: Record<string, unknown>, fields: string[]): void {
  for (const k of Object.keys(tagged)) {
    if (k !== "$t" && !fields.includes(k)) fail(`"${tagged.$t}" has an unknown field "${k}"`);
  }
  for (const k of fields) if (!(k in tagged)) fail(`"${tagged.$t}" needs a field "${k}"`);
}

function stringField(tagged: Record<string, unknown>, field = "v"): string {
  const v = tagged[field];
  if (typeof v !== "string") fail(`"${tagged.$t}" needs a string in "${field}"`);
  return v;
}

function integerText(tagged: Record<string, unknown>): bigint {
  const text = stringField(tagged);
  if (!/^-?\d+$/.test(text)) fail(`"${tagged.$t}" needs a decimal integer, not "${text}"`);
  return BigInt(text);
}

function base64(tagged: Record<string, unknown>): Uint8Array {
  const text = stringField(tagged);
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    return fail(`"${tagged.$t}" holds invalid base64`);
  }
}

const SPECIAL_NUMBERS: Record<string, number> = {
  "NaN": NaN,
  "Infinity": Infinity,
  "-Infinity": -Infinity,
  "-0": -0,
};

function decodeNumber(json: unknown): number {
  if (typeof json === "number") return json;
  const n = decodeValue(json);
  if (typeof n !== "number") fail("Expected a number");
  return n;
}

/** The value a JSON form stands for; throws SyntaxError on anything encodeValue cannot make. */
export function decodeValue(json: unknown): unknown {
  if (json === null || typeof json === "string" || typeof json === "boolean") return json;
  if (typeof json === "number") return json;
  if (Array.isArray(json)) {
    const out = new Array(json.length);
    json.forEach((item, i) => {
      if (!(isObject(item) && item.$t === "hole")) out[i] = decodeValue(item);
      else expectFields(item, []);
    });
    return out;
  }
  if (!isObject(json)) return fail(`Unexpected ${typeof json}`);
  if (!Object.hasOwn(json, "$t")) {
    return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, decodeValue(v)]));
  }
  switch (json.$t) {
    case "undefined":
      expectFields(json, []);
      return undefined;
    case "number": {
      expectFields(json, ["v"]);
      const text = stringField(json);
      if (!Object.hasOwn(SPECIAL_NUMBERS, text)) fail(`"number" cannot be "${text}"`);
      return SPECIAL_NUMBERS[text];
    }
    case "bigint":
      expectFields(json, ["v"]);
      return integerText(json);
    case "u64": {
      expectFields(json, ["v"]);
      const n = integerText(json);
      if (n < 0n || n >= 1n << 64n) fail(`"u64" is out of range: ${n}`);
      return new Deno.KvU64(n);
    }
    case "date":
      expectFields(json, ["v"]);
      return new Date(decodeNumber(json.v));
    case "bytes":
      expectFields(json, ["v"]);
      return base64(json);
    case "typed": {
      expectFields(json, ["type", "v"]);
      const bytes = base64(json);
      if (json.type === "ArrayBuffer") return bytes.buffer;
      const type = json.type as TypedName;
      if (typeof type !== "string" || !Object.hasOwn(TYPED, type)) {
        fail(`"typed" has an unknown type "${String(json.type)}"`);
      }
      const size = TYPED[type].BYTES_PER_ELEMENT;
      if (bytes.length % size !== 0) fail(`"typed" ${type} has ${bytes.length} bytes`);
      return new TYPED[type](bytes.buffer as ArrayBuffer, 0, bytes.length / size);
    }
    case "map": {
      expectFields(json, ["v"]);
      if (!Array.isArray(json.v)) fail(`"map" needs a list of pairs`);
      return new Map(json.v.map((pair) => {
        if (!Array.isArray(pair) || pair.length !== 2) fail(`"map" needs a list of pairs`);
        return [decodeValue(pair[0]), decodeValue(pair[1])];
      }));
    }
    case "set":
      expectFields(json, ["v"]);
      if (!Array.isArray(json.v)) fail(`"set" needs a list`);
      return new Set(json.v.map(decodeValue));
    case "regexp": {
      expectFields(json, ["v", "flags"]);
      const [source, flags] = [stringField(json), stringField(json, "flags")];
      try {
        return new RegExp(source, flags);
      } catch {
        return fail(`"regexp" is not a valid pattern`);
      }
    }
    case "object":
      expectFields(json, ["v"]);
      if (!isObject(json.v)) fail(`"object" needs an object`);
      return Object.fromEntries(Object.entries(json.v).map(([k, v]) => [k, decodeValue(v)]));
    default:
      return fail(`Unknown tag ${JSON.stringify(json.$t)}`);
  }
}

/** The JSON form of a KV key. */
export function encodeKey(key: Deno.KvKey): Json[] {
  return key.map((part) => encodeValue(part));
}

/** A KV key from its JSON form; throws SyntaxError when a part is of a type keys cannot hold. */
export function decodeKey(json: unknown): Deno.KvKey {
  if (!Array.isArray(json)) fail("A key must be a list of parts");
  return json.map((item) => {
    const part = decodeValue(item);
    const ok = typeof part === "string" || typeof part === "number" ||
      typeof part === "bigint" || typeof part === "boolean" ||
      (part instanceof Uint8Array && part.constructor === Uint8Array);
    if (!ok) fail(`A key part cannot be ${JSON.stringify(item)}`);
    return part as Deno.KvKeyPart;
  });
}
