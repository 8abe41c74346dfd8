// List output: tab-separated rows (as the original tool printed them), or
// JSON arrays of the store's row objects. Secret hashes are never in a row.

import type { AliasRow, AppRow, DomainRow } from "../store/types.js";

const state = (enabled: boolean): string => (enabled ? "enabled" : "disabled");

export function formatDomains(rows: readonly DomainRow[]): string[] {
  return rows.map((r) => `${r.domain_name}\t${state(r.enabled)}\t${r.updated_at}`);
}

export function formatAliases(rows: readonly AliasRow[]): string[] {
  return rows.map((r) => `${r.alias_email}\t${r.target_user}\t${state(r.enabled)}\t${r.updated_at}`);
}

/** Each app on one line, then its allowed senders on a line of their own. */
export function formatApps(rows: readonly AppRow[]): string[] {
  const lines: string[] = [];
  for (const a of rows) {
    lines.push(`${a.app_id}\t${state(a.enabled)}\t${a.updated_at}`);
    const senders = a.senders.map((s) => (s.enabled ? s.from_addr : `${s.from_addr} (disabled)`));
    lines.push(`\t\t${senders.length > 0 ? senders.join(", ") : "-"}`);
  }
  return lines;
}

export function formatJson(rows: readonly object[]): string[] {
  return [JSON.stringify(rows, null, 2)];
}
