// The lists: section of the config file: distribution lists from Keycloak
// groups (off unless parent_group is set).

import { choice, int, optional, text } from "./fields.js";
import type { Section } from "./reader.js";
import { LISTS, POSTINGS, type Setting, type TextSpec } from "./schema.js";

const L = LISTS.settings;

export type Posting = (typeof POSTINGS)[number];
export { POSTINGS };

export interface ListsSettings {
  /** The group whose direct subgroups are lists, e.g. "/lists"; null: lists are off. */
  readonly parentGroup: string | null;
  /** The subgroup attribute holding the list's address. */
  readonly addressAttribute: string;
  /** The subgroup attribute choosing who may write to the list (anyone | members | local). */
  readonly postingAttribute: string;
  /** Who may write when a list does not say. */
  readonly defaultPosting: Posting;
  /** The subgroup attribute naming who may send as the list: "members", or a group path; absent: nobody. */
  readonly sendAsAttribute: string;
  /** Members read per request (paged reads of groups and members). */
  readonly pageSize: number;
}

export const LISTS_OFF: ListsSettings = Object.freeze({
  parentGroup: null, addressAttribute: L.address_attribute.default, postingAttribute: L.posting_attribute.default,
  defaultPosting: L.default_posting.default, sendAsAttribute: L.send_as_attribute.default, pageSize: L.page_size.default,
});

export function parseLists(s: Section): ListsSettings {
  const attr = (row: Setting<TextSpec>): string => {
    const v = text(s, row).trim();
    if (v === "" || /[\s,]/.test(v)) throw s.error(s.key(row.name), `must be one Keycloak attribute name (no spaces or commas), got ${JSON.stringify(v)}`);
    return v;
  };
  const raw = optional(s, L.parent_group)?.trim() ?? "";
  let parentGroup: string | null = null;
  if (raw !== "") {
    if (!raw.startsWith("/") || raw === "/" || raw.endsWith("/") || raw.includes("//")) {
      throw s.error(s.key(L.parent_group.name), `must be a Keycloak group path like /lists, got ${JSON.stringify(raw)}`);
    }
    parentGroup = raw;
  }
  const settings: ListsSettings = {
    parentGroup,
    addressAttribute: attr(L.address_attribute),
    postingAttribute: attr(L.posting_attribute),
    defaultPosting: choice(s, L.default_posting),
    sendAsAttribute: attr(L.send_as_attribute),
    pageSize: int(s, L.page_size),
  };
  s.finish();
  return settings;
}
