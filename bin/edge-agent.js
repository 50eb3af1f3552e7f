#!/usr/bin/env node
// `edge-agent` as npm installs it (package.json "bin"): runs src/cli/main.ts with this Node.
// Plain JavaScript that any Node parses, so an older one is told what it needs instead of failing
// on TypeScript with a stack trace.
import { readFileSync, realpathSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = dirname(dirname(realpathSync(fileURLToPath(import.meta.url))));
const { engines } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const minimum = String(engines.node).replace(/^>=\s*/, "");

/** Whether version a (e.g. "22.3.0") is older than b (e.g. "24", "24.1"). */
function older(a, b) {
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let index = 0; index < 3; index++) {
    const difference = (left[index] || 0) - (right[index] || 0);
    if (difference !== 0) return difference < 0;
  }
  return false;
}

function refuse(line) {
  process.stderr.write(`edge-agent: ${line}\n`);
  process.exit(1);
}

if (older(process.versions.node, minimum)) {
  refuse(
    `needs Node ${minimum} or newer, and this is Node ${process.versions.node}; npm start and npm run agent in a checkout use the project's pinned Node (run npm install first), or install the packaged edge-agent`,
  );
}
// Node runs TypeScript by stripping its types, which it refuses to do under node_modules.
if (root.split(sep).includes("node_modules")) {
  refuse(
    `cannot run from ${root}: Node does not run TypeScript inside node_modules; install a checkout linked instead (npm install -g /path/to/edge-agent, or npm link in it), or install the packaged edge-agent`,
  );
}
await import(pathToFileURL(join(root, "src", "cli", "main.ts")).href);
