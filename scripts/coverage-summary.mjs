// Prints the line coverage of reauth-server per module (a Markdown table, as in docs/TESTING.md)
// from `cargo llvm-cov report --json --summary-only`, and fails when server/src/tokens/ is below
// the bar given as the second argument.
// Usage: node scripts/coverage-summary.mjs SUMMARY.json MIN_TOKENS_PERCENT
import { readFileSync } from "node:fs";

const [summaryPath, minTokens] = process.argv.slice(2);
const files = JSON.parse(readFileSync(summaryPath, "utf8")).data[0].files;

const modules = new Map();
const add = (name, lines) => {
  const module = modules.get(name) ?? { count: 0, covered: 0 };
  module.count += lines.count;
  module.covered += lines.covered;
  modules.set(name, module);
};
for (const file of files) {
  const relative = file.filename.split("/server/src/")[1];
  if (!relative) continue;
  const slash = relative.indexOf("/");
  add(slash === -1 ? relative : `${relative.slice(0, slash)}/`, file.summary.lines);
  if (slash !== -1) add(relative, file.summary.lines);
  add("total", file.summary.lines);
}

const percent = ({ count, covered }) => (count === 0 ? 100 : (100 * covered) / count);
const names = [...modules.keys()].filter((name) => name !== "total").sort();
console.log("| module | lines | missed | covered |\n|---|---:|---:|---:|");
for (const name of [...names, "total"]) {
  const module = modules.get(name);
  const label = name === "total" ? "**total**" : name.includes("/") && !name.endsWith("/") ? `  ${name}` : name;
  console.log(`| ${label} | ${module.count} | ${module.count - module.covered} | ${percent(module).toFixed(1)} % |`);
}

const tokens = modules.get("tokens/");
if (!tokens || percent(tokens) < Number(minTokens)) {
  console.error(`[coverage] FAILED: server/src/tokens/ lines at ${tokens ? percent(tokens).toFixed(1) : "?"}%, below ${minTokens}%`);
  process.exit(1);
}
