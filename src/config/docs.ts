// The sample config and the README's configuration tables, written from
// schema.ts. Pure text in, text out: write-docs.ts puts them in the files and
// test/config-schema.test.ts checks that the files hold what this writes.

import { stringify } from "yaml";
import { OLDER_KEYS, SECTIONS, type DocGroup, type Reload, type SectionDef, type Setting, type YamlValue } from "./schema.js";

const WIDTH = 78;

/** A YAML value as the sample writes it: strings double-quoted, lists and mappings in flow style. */
function yamlValue(v: YamlValue): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null || typeof v !== "object") return String(v);
  return stringify(v, { collectionStyle: "flow", lineWidth: 0 }).trim();
}

/** `text` as comment lines of at most WIDTH columns at `indent`. */
function comment(indent: string, text: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && indent.length + 2 + line.length + 1 + word.length > WIDTH) {
      lines.push(`${indent}# ${line}`);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(`${indent}# ${line}`);
  return lines;
}

const SAMPLE_HEADER = `# mailcloak configuration: copy to /etc/mailcloak/config.yaml (mode 0640,
# owner root, group mailcloak) and edit. Every key is shown with its default
# or an example value; commented-out keys and sections are optional.
# Check it with: mailcloak check-config /etc/mailcloak/config.yaml
# Apply changes without a restart: systemctl reload mailcloak (SIGHUP).
# Keys marked (restart) take effect only on restart.
# Written from src/config/schema.ts (npm run config:docs): edit the schema.
`;

function sampleSection(sec: SectionDef): string[] {
  const depth = sec.path.split(".").length - 1;
  const name = sec.path.split(".").pop()!;
  const lines: string[] = [""];
  const at = "  ".repeat(depth);
  // A commented-out section: every line after its intro starts with "# " at the section's column.
  const mark = sec.commented ? "# " : "";
  if (sec.intro) lines.push(...comment(at, sec.intro));
  lines.push(`${at}${mark}${name}:`);
  const inner = `${at}${mark}  `;
  for (const row of sec.rows) {
    const value = row.example ?? ("default" in row ? row.default : undefined) ?? "";
    lines.push(...comment(inner, row.reload === "restart" ? `${row.meaning} (restart)` : row.meaning));
    lines.push(`${inner}${row.commented && !sec.commented ? "# " : ""}${row.name}: ${yamlValue(value)}`);
  }
  return lines;
}

/** configs/config.yaml.sample. */
export function renderSample(): string {
  // Sub-sections follow their parent's rows (SECTIONS' order); each starts after a blank line.
  const body = SECTIONS.flatMap(sampleSection);
  return SAMPLE_HEADER + body.join("\n") + "\n";
}

const cell = (text: string): string => text.replace(/\|/g, "\\|");
const code = (v: YamlValue): string => (typeof v === "string" ? (v === "" ? '`""`' : `\`${v}\``) : `\`${yamlValue(v)}\``);

function typeCell(row: Setting): string {
  switch (row.type) {
    case "int":
      return `int ${row.min}–${row.max}`;
    case "enum":
      return row.values.map((v) => `\`${v}\``).join(" | ");
    case "host:port":
      return "`HOST:PORT`";
    default:
      return row.type;
  }
}

function defaultCell(row: Setting): string {
  if (row.defaultText !== undefined) return row.defaultText;
  return "default" in row && row.default !== undefined ? code(row.default) : "—";
}

/** One README table row per setting (plus one for its environment variable). */
function tableRows(row: Setting): string[] {
  const meaning = row.notes ? `${row.meaning} ${row.notes}` : row.meaning;
  const rows = [`| \`${row.key}\` | ${cell(typeCell(row))} | ${cell(defaultCell(row))} | ${cell(meaning)} |`];
  if (row.env) rows.push(`| env \`${row.env}\` | string | — | When set and non-empty, overrides \`${row.key}\` and \`${row.name}_file\`. |`);
  return rows;
}

// Whether SIGHUP applies a key is in the block "sighup", by section.
const TABLE_HEAD = ["| key | type | default | meaning |", "|---|---|---|---|"];

function settingsTable(group: DocGroup): string[] {
  const sections = SECTIONS.filter((s) => s.doc === group);
  const lines = [...TABLE_HEAD, ...sections.flatMap((s) => s.rows.flatMap(tableRows))];
  for (const s of sections) if (s.readme) lines.push("", s.readme);
  // The older Go layout's keys sit with the identity source they fed.
  if (group === "idp") lines.push("", "Older layout (Go mailcloak):", "", ...olderTable());
  return lines;
}

function olderTable(): string[] {
  return [
    "| older key | current equivalent | notes |",
    "|---|---|---|",
    ...OLDER_KEYS.map((k) => `| \`${k.key}\` | ${k.current.startsWith("a ") ? k.current : `\`${k.current}\``} | ${cell(k.notes)} |`),
  ];
}

/** Per top-level section: the keys SIGHUP applies and those that need a restart (alike sections share a row). */
function sighupTable(): string[] {
  const tops = [...new Set(SECTIONS.map((s) => s.path.split(".")[0]!))];
  const rows = new Map<string, string[]>();
  for (const top of tops) {
    const secs = SECTIONS.filter((s) => s.path === top || s.path.startsWith(`${top}.`));
    const settings = secs.flatMap((s) => s.rows);
    const names = (r: Reload): string => {
      const picked = settings.filter((row) => row.reload === r);
      if (picked.length === 0) return "—";
      if (picked.length === settings.length) return "all";
      return picked.map((row) => `\`${row.key.slice(top.length + 1)}\``).join(", ");
    };
    const notes = secs.map((s) => s.reloadNote).filter((n): n is string => n !== undefined);
    const applied = names("applies");
    const cells = `${applied}${applied !== "—" && notes.length > 0 ? ` (${notes.join("; ")})` : ""} | ${names("restart")}`;
    rows.set(cells, [...(rows.get(cells) ?? []), `\`${top}\``]);
  }
  return ["| section | applied on reload | needs a restart |", "|---|---|---|", ...[...rows].map(([cells, secs]) => `| ${secs.join(", ")} | ${cells} |`)];
}

/** The README blocks, by name: `<!-- settings:begin NAME -->` ... `<!-- settings:end -->`. */
export const README_BLOCKS: readonly string[] = [...new Set(SECTIONS.map((s) => s.doc)), "sighup"];

export function renderReadmeBlock(name: string): string {
  if (name === "sighup") return sighupTable().join("\n");
  if (!SECTIONS.some((s) => s.doc === name)) throw new Error(`no README block named ${name}`);
  return settingsTable(name as DocGroup).join("\n");
}

const BLOCK = /<!-- settings:begin ([a-z]+) -->\n([\s\S]*?)\n?<!-- settings:end -->/g;

/** The blocks a README holds, by name. */
export function readmeBlocks(readme: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of readme.matchAll(BLOCK)) out.set(m[1]!, m[2]!);
  return out;
}

/** The README with every block rewritten from the schema (blocks it lacks are not added). */
export function updateReadme(readme: string): string {
  return readme.replace(BLOCK, (_m, name: string) => `<!-- settings:begin ${name} -->\n${renderReadmeBlock(name)}\n<!-- settings:end -->`);
}
