// The lists: section of the config file: distribution lists from Keycloak
// groups (off unless parent_group is set).

import type { Section } from "./reader.js";

export type Posting = "anyone" | "members" | "local";
export const POSTINGS: readonly Posting[] = ["anyone", "members", "local"];

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
  parentGroup: null, addressAttribute: "mail", postingAttribute: "mailPosting", defaultPosting: "members",
  sendAsAttribute: "mailSendAs", pageSize: 500,
});

export function parseLists(s: Section): ListsSettings {
  const attr = (name: string, def: string): string => {
    const v = s.string(name, def).trim();
    if (v === "" || /[\s,]/.test(v)) throw s.error(s.key(name), `must be one Keycloak attribute name (no spaces or commas), got ${JSON.stringify(v)}`);
    return v;
  };
  const raw = s.optionalString("parent_group")?.trim() ?? "";
  let parentGroup: string | null = null;
  if (raw !== "") {
    if (!raw.startsWith("/") || raw === "/" || raw.endsWith("/") || raw.includes("//")) {
      throw s.error(s.key("parent_group"), `must be a Keycloak group path like /lists, got ${JSON.stringify(raw)}`);
    }
    parentGroup = raw;
  }
  const settings: ListsSettings = {
    parentGroup,
    addressAttribute: attr("address_attribute", LISTS_OFF.addressAttribute),
    postingAttribute: attr("posting_attribute", LISTS_OFF.postingAttribute),
    defaultPosting: s.oneOf("default_posting", POSTINGS as Posting[], LISTS_OFF.defaultPosting),
    sendAsAttribute: attr("send_as_attribute", LISTS_OFF.sendAsAttribute),
    pageSize: s.int("page_size", LISTS_OFF.pageSize, 10, 5000),
  };
  s.finish();
  return settings;
}
