// `npm run config:docs`: writes configs/config.yaml.sample and the README's
// configuration blocks from schema.ts (run from the repository root).

import { readFileSync, writeFileSync } from "node:fs";
import { README_BLOCKS, readmeBlocks, renderSample, updateReadme } from "./docs.js";

const SAMPLE = "configs/config.yaml.sample";
const README = "README.md";

writeFileSync(SAMPLE, renderSample());
const readme = readFileSync(README, "utf8");
const missing = README_BLOCKS.filter((b) => !readmeBlocks(readme).has(b));
writeFileSync(README, updateReadme(readme));
process.stdout.write(`wrote ${SAMPLE} and ${README}\n`);
if (missing.length > 0) {
  process.stderr.write(`README.md lacks the blocks ${missing.join(", ")}: add <!-- settings:begin NAME --> and <!-- settings:end --> lines where each table goes, then run this again\n`);
  process.exitCode = 1;
}
