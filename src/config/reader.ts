// A small typed walker over parsed YAML. Each getter names the key it reads,
// so every error can say exactly which key in which file is wrong. Keys no
// getter asked for are reported by `finish()` as warnings, not errors: the Go
// mailcloak (yaml.v3 without KnownFields) ignores them, so a config it runs
// on must start here too; the warning names the key so a typo is still seen.

import { isMap, isScalar, isSeq, type Node } from "yaml";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A Go zero value, as a key left empty. */
function isZero(v: unknown): boolean {
  return v === undefined || v === null || v === "" || v === 0;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * The source text of every scalar under a mapping, by key, for the mappings
 * of a document's toJS() value. String settings take a number or boolean as
 * written (`client_secret: 0123` is "0123", not "123"), as yaml.v3 does for
 * the Go version's string fields; `socket_mode: 0o660` keeps its prefix.
 */
export type SourceText = WeakMap<object, Map<string, string>>;

export function scalarSources(node: unknown, js: unknown, out: SourceText = new WeakMap()): SourceText {
  if (isMap(node) && isPlain(js)) {
    const texts = new Map<string, string>();
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const v = pair.value as Node | null;
      if (isScalar(v) && typeof v.source === "string") texts.set(k, v.source);
      else scalarSources(v, js[k], out);
    }
    out.set(js, texts);
  } else if (isSeq(node) && Array.isArray(js)) {
    node.items.forEach((item, i) => scalarSources(item, js[i], out));
  }
  return out;
}

export interface SectionContext {
  readonly file: string;
  readonly sources: SourceText;
  /** Where finish() reports keys nobody read, and load.ts its notices. */
  readonly warnings: string[];
  /** Told every key a getter reads (full path), for the schema test. */
  readonly onRead?: (key: string) => void;
}

export class Section {
  readonly #ctx: SectionContext;
  readonly #path: string;
  readonly #data: Plain;
  readonly #seen = new Set<string>();

  constructor(ctx: SectionContext, path: string, data: unknown) {
    this.#ctx = ctx;
    this.#path = path;
    if (data === undefined || data === null) data = {};
    if (!isPlain(data)) throw this.error(path || "(top level)", `must be a mapping, got ${describe(data)}`);
    this.#data = data;
  }

  /** A section for a value that is not directly under a key (a list item, a merged mapping). */
  child(path: string, data: unknown): Section {
    return new Section(this.#ctx, path, data);
  }

  key(name: string): string {
    return this.#path ? `${this.#path}.${name}` : name;
  }

  error(key: string, message: string): ConfigError {
    return new ConfigError(`${this.#ctx.file}: ${key}: ${message}`);
  }

  /** A notice for the log (one line, naming file and key); the config is still used. */
  warn(key: string, message: string): void {
    this.#ctx.warnings.push(`${this.#ctx.file}: ${key}: ${message}`);
  }

  has(name: string): boolean {
    return this.#data[name] !== undefined && this.#data[name] !== null;
  }

  raw(name: string): unknown {
    this.#seen.add(name);
    this.#ctx.onRead?.(this.key(name));
    return this.#data[name];
  }

  /** The scalar under `name` as written in the file (undefined for mappings, lists, or absent keys). */
  sourceText(name: string): string | undefined {
    return this.#ctx.sources.get(this.#data)?.get(name);
  }

  /**
   * This section with `other`'s keys filling in the ones that are absent,
   * null, "" or 0 here: the Go release's rule for its two Keycloak layouts.
   */
  withFallback(other: Section): Section {
    const data: Plain = { ...this.#data };
    const texts = new Map(this.#ctx.sources.get(this.#data));
    const otherTexts = this.#ctx.sources.get(other.#data);
    for (const [k, v] of Object.entries(other.#data)) {
      if (!isZero(data[k]) || isZero(v)) continue;
      data[k] = v;
      const t = otherTexts?.get(k);
      if (t === undefined) texts.delete(k);
      else texts.set(k, t);
    }
    this.#ctx.sources.set(data, texts);
    return new Section(this.#ctx, this.#path, data);
  }

  /** Whether both sections set a key to different values. */
  conflictsWith(other: Section): boolean {
    return Object.entries(other.#data).some(([k, v]) => !isZero(v) && !isZero(this.#data[k]) && JSON.stringify(v) !== JSON.stringify(this.#data[k]));
  }

  section(name: string): Section {
    return new Section(this.#ctx, this.key(name), this.raw(name));
  }

  /** An optional sub-section: undefined when the key is absent. */
  maybeSection(name: string): Section | undefined {
    return this.has(name) ? this.section(name) : (this.raw(name), undefined);
  }

  /** A scalar as text: strings as they are, numbers and booleans as written. */
  #text(name: string, v: unknown): string {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return this.sourceText(name) ?? String(v);
    throw this.error(this.key(name), `must be a string, got ${describe(v)}`);
  }

  string(name: string, fallback?: string): string {
    const v = this.raw(name);
    if (v === undefined || v === null) {
      if (fallback === undefined) throw this.error(this.key(name), "is required");
      return fallback;
    }
    return this.#text(name, v);
  }

  optionalString(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null || v === "") return undefined;
    return this.#text(name, v);
  }

  /** A required string that may not be empty. */
  nonEmpty(name: string, fallback?: string): string {
    const v = this.string(name, fallback).trim();
    if (v === "") throw this.error(this.key(name), "must not be empty");
    return v;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v)) {
      throw this.error(this.key(name), `must be a whole number, got ${describe(v)}`);
    }
    if (v < min || v > max) throw this.error(this.key(name), `must be between ${min} and ${max}, got ${v}`);
    return v;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw this.error(this.key(name), `must be true or false, got ${describe(v)}`);
    return v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T | undefined): T {
    const v = this.raw(name);
    if (v === undefined || v === null || v === "") {
      if (fallback === undefined) throw this.error(this.key(name), `is required (one of: ${allowed.join(", ")})`);
      return fallback;
    }
    const t = typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? this.#text(name, v).trim().toLowerCase() : null;
    if (t === null || !(allowed as readonly string[]).includes(t)) {
      throw this.error(this.key(name), `must be one of ${allowed.join(", ")}, got ${describe(v)}`);
    }
    return t as T;
  }

  list(name: string): unknown[] {
    const v = this.raw(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.error(this.key(name), `must be a list, got ${describe(v)}`);
    return v;
  }

  /** Report keys that no getter asked for (one warning each). Call after reading everything. */
  finish(): void {
    for (const k of Object.keys(this.#data)) {
      if (!this.#seen.has(k)) {
        this.warn(this.key(k), "unknown key, ignored (as the Go mailcloak ignores it); check the spelling against configs/config.yaml.sample");
      }
    }
  }
}
