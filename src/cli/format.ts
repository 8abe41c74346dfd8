// List output: tab-separated rows (as the original tool printed them, but
// with ISO 8601 times instead of epoch seconds), or JSON arrays of the
// store's row objects, fields as the Go version names them (times stay epoch
// seconds there). Secret hashes are never in a row.

import type { AliasRow, AppRow, DomainRow } from "../store/types.js";

const state = (enabled: boolean): string => (enabled ? "enabled" : "disabled");

/** Epoch seconds (the store's updated_at) as UTC ISO 8601 to the second, e.g. 2026-03-01T12:00:00Z. */
export function isoTime(epochSeconds: number): string {
  if (!Number.isFinite(epochSeconds)) return "-";
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function formatDomains(rows: readonly DomainRow[]): string[] {
  return rows.map((r) => `${r.domain_name}\t${state(r.enabled)}\t${isoTime(r.updated_at)}`);
}

export function formatAliases(rows: readonly AliasRow[]): string[] {
  return rows.map((r) => `${r.alias_email}\t${r.target_user}\t${state(r.enabled)}\t${isoTime(r.updated_at)}`);
}

/** Each app on one line, then its allowed senders on a line of their own. */
export function formatApps(rows: readonly AppRow[]): string[] {
  const lines: string[] = [];
  for (const a of rows) {
    lines.push(`${a.app_id}\t${state(a.enabled)}\t${isoTime(a.updated_at)}`);
    const senders = a.senders.map((s) => (s.enabled ? s.from_addr : `${s.from_addr} (disabled)`));
    lines.push(`\t\t${senders.length > 0 ? senders.join(", ") : "-"}`);
  }
  return lines;
}

export function formatJson(rows: readonly object[]): string[] {
  return [JSON.stringify(rows, null, 2)];
}
