// A small typed walker over parsed YAML. Each getter names the key it reads,
// so every error can say exactly which key in which file is wrong, and
// `finish()` turns any key nobody asked for into an "unknown key" error (a
// typo must not silently fall back to a default).

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}

export class Section {
  readonly #file: string;
  readonly #path: string;
  readonly #data: Plain;
  readonly #seen = new Set<string>();

  constructor(file: string, path: string, data: unknown) {
    this.#file = file;
    this.#path = path;
    if (data === undefined || data === null) data = {};
    if (!isPlain(data)) throw this.error(path || "(top level)", `must be a mapping, got ${describe(data)}`);
    this.#data = data;
  }

  /** A section for a value that is not directly under a key (a list item). */
  child(path: string, data: unknown): Section {
    return new Section(this.#file, path, data);
  }

  key(name: string): string {
    return this.#path ? `${this.#path}.${name}` : name;
  }

  error(key: string, message: string): ConfigError {
    return new ConfigError(`${this.#file}: ${key}: ${message}`);
  }

  has(name: string): boolean {
    return this.#data[name] !== undefined && this.#data[name] !== null;
  }

  raw(name: string): unknown {
    this.#seen.add(name);
    return this.#data[name];
  }

  section(name: string): Section {
    return new Section(this.#file, this.key(name), this.raw(name));
  }

  /** An optional sub-section: undefined when the key is absent. */
  maybeSection(name: string): Section | undefined {
    return this.has(name) ? this.section(name) : (this.raw(name), undefined);
  }

  string(name: string, fallback?: string): string {
    const v = this.raw(name);
    if (v === undefined || v === null) {
      if (fallback === undefined) throw this.error(this.key(name), "is required");
      return fallback;
    }
    if (typeof v !== "string") throw this.error(this.key(name), `must be a string, got ${describe(v)}`);
    return v;
  }

  optionalString(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw this.error(this.key(name), `must be a string, got ${describe(v)}`);
    return v;
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
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v.trim().toLowerCase())) {
      throw this.error(this.key(name), `must be one of ${allowed.join(", ")}, got ${describe(v)}`);
    }
    return v.trim().toLowerCase() as T;
  }

  list(name: string): unknown[] {
    const v = this.raw(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.error(this.key(name), `must be a list, got ${describe(v)}`);
    return v;
  }

  /** Reject keys that no getter asked for. Call after reading everything. */
  finish(): void {
    for (const k of Object.keys(this.#data)) {
      if (!this.#seen.has(k)) {
        throw this.error(this.key(k), "unknown key (check the spelling; see configs/config.yaml.sample for every key)");
      }
    }
  }
}
