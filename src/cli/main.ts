#!/usr/bin/env node
// Nothing but the Node check may load before it: on an older Node the rest fails with a stack trace.
import { nodeVersionProblem } from "./node-version.ts";

const problem = nodeVersionProblem(process.versions.node);
if (problem !== null) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
} else {
  void import("./dispatch.ts").then(({ main }) => main(process.argv.slice(2)));
}
