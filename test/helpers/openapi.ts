// Checks recorded HTTP exchanges against docs/openapi.json: the route and
// method are documented, the status is one the operation lists, and the body
// matches its schema (the JSON Schema subset the document uses).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./daemon.js";
import type { Exchange } from "./admin.js";

type Schema = Record<string, unknown>;
interface Operation {
  responses: Record<string, { content?: { "application/json"?: { schema: Schema } } }>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

export const OPENAPI: Doc = JSON.parse(readFileSync(join(ROOT, "docs/openapi.json"), "utf8")) as Doc;

/** The documented template for a concrete path, or null. */
export function templateOf(path: string): string | null {
  const segs = path.split("?")[0]!.split("/");
  for (const t of Object.keys(OPENAPI.paths)) {
    const ts = t.split("/");
    if (ts.length === segs.length && ts.every((s, i) => (s.startsWith("{") ? segs[i] !== "" : s === segs[i]))) return t;
  }
  return null;
}

function resolve(s: Schema): Schema {
  const ref = s.$ref;
  if (typeof ref !== "string") return s;
  return OPENAPI.components.schemas[ref.replace("#/components/schemas/", "")]!;
}

function typeOk(t: string, v: unknown): boolean {
  switch (t) {
    case "null": return v === null;
    case "array": return Array.isArray(v);
    case "object": return v !== null && typeof v === "object" && !Array.isArray(v);
    case "integer": return Number.isInteger(v);
    default: return typeof v === t;
  }
}

/** Problems with `v` against `schema` (empty: conforms). */
export function validate(schema: Schema, v: unknown, at = "$"): string[] {
  const s = resolve(schema);
  const problems: string[] = [];
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type as string[] : [s.type as string];
    if (!types.some((t) => typeOk(t, v))) return [`${at}: expected ${types.join("|")}, got ${JSON.stringify(v)?.slice(0, 80)}`];
  }
  if (Array.isArray(s.enum) && !s.enum.includes(v)) problems.push(`${at}: ${JSON.stringify(v)} not in ${JSON.stringify(s.enum)}`);
  if (Array.isArray(v) && s.items) v.forEach((x, i) => problems.push(...validate(s.items as Schema, x, `${at}[${i}]`)));
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required ?? []) as string[]) if (!(r in v)) problems.push(`${at}: missing ${r}`);
    for (const [k, x] of Object.entries(v)) {
      if (props[k]) problems.push(...validate(props[k], x, `${at}.${k}`));
      else if (s.additionalProperties === false) problems.push(`${at}: undocumented property ${k}`);
    }
  }
  return problems;
}

/** Problems with one exchange (empty: conforms). */
export function checkExchange(e: Exchange): string[] {
  const where = `${e.method} ${e.path} -> ${e.status}`;
  const t = templateOf(e.path);
  if (t === null) return e.status === 404 ? [] : [`${where}: undocumented path`];
  const op = OPENAPI.paths[t]![e.method.toLowerCase()];
  if (op === undefined) return e.status === 405 ? [] : [`${where}: undocumented method`];
  const r = op.responses[String(e.status)];
  if (r === undefined) return [`${where}: status not documented for ${e.method} ${t}`];
  const schema = r.content?.["application/json"]?.schema;
  if (schema === undefined) return e.text === "" ? [] : [`${where}: documented without a body, got ${e.text.slice(0, 80)}`];
  if (!/application\/json/.test(String(e.headers["content-type"]))) return [`${where}: content-type ${e.headers["content-type"]}`];
  return validate(schema, e.body).map((p) => `${where}: ${p}`);
}

/** Documented operations no exchange exercised ("METHOD /template"). */
export function unexercised(exchanges: readonly Exchange[]): string[] {
  const seen = new Set(exchanges.map((e) => `${e.method} ${templateOf(e.path)}`));
  const all: string[] = [];
  for (const [t, ops] of Object.entries(OPENAPI.paths)) for (const m of Object.keys(ops)) all.push(`${m.toUpperCase()} ${t}`);
  return all.filter((k) => !seen.has(k));
}
