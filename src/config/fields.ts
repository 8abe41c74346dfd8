// Readers that take a schema row: the default and bounds come from
// schema.ts, the key name from the section being read (so the older
// top-level keycloak: section reads idp.keycloak's rows under its own name).

import type { Section } from "./reader.js";
import type { BoolSpec, EnumSpec, IntSpec, Setting, TextSpec } from "./schema.js";

export function int(s: Section, row: Setting<IntSpec>, fallback: number = row.default): number {
  return s.int(row.name, fallback, row.min, row.max);
}

export function bool(s: Section, row: Setting<BoolSpec>): boolean {
  return s.bool(row.name, row.default);
}

export function choice<T extends string>(s: Section, row: Setting<EnumSpec<T>>): T {
  return s.oneOf(row.name, row.values, row.default);
}

/** A text setting: its default when absent (required when it has none). */
export function text(s: Section, row: Setting<TextSpec>): string {
  return s.string(row.name, typeof row.default === "string" ? row.default : undefined);
}

/** A text setting that may not be empty. */
export function nonEmpty(s: Section, row: Setting<TextSpec>): string {
  return s.nonEmpty(row.name, typeof row.default === "string" ? row.default : undefined);
}

/** A text setting whose empty value means "unset". */
export function optional(s: Section, row: Setting<TextSpec>): string | undefined {
  return s.optionalString(row.name);
}
