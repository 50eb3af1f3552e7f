import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { MINIMUM_NODE_VERSION, nodeVersionProblem } from "../../../src/cli/node-version.ts";

describe("the Node version check of `node src/cli/main.ts`", () => {
  it("says in one line which Node is needed, and that npm start uses the pinned one", () => {
    expect(nodeVersionProblem("20.20.2", "24.0.0")).toBe(
      "edge-agent needs Node 24.0.0 or newer, and this is Node 20.20.2; npm start and npm run agent use the project's pinned Node (run npm install first), or install the packaged edge-agent",
    );
    expect(nodeVersionProblem("v23.11.0", "24.0.0")).toMatch(
      /^edge-agent needs Node 24\.0\.0 or newer, and this is Node 23\.11\.0;/,
    );
    expect(nodeVersionProblem("24.0.0", "24.1.0")).not.toBeNull();
    expect(nodeVersionProblem("24.1.0", "24.0.9")).toBeNull();
    expect(nodeVersionProblem("24.0.0", "24.0.0")).toBeNull();
    expect(nodeVersionProblem("26.10.0")).toBeNull();
    expect(nodeVersionProblem("not a version")).toBeNull();
  });

  it("needs what package.json's engines say", () => {
    const engines = (
      JSON.parse(readFileSync(resolve(import.meta.dirname, "../../../package.json"), "utf8")) as {
        engines: { node: string };
      }
    ).engines.node;
    expect(engines).toBe(`>=${MINIMUM_NODE_VERSION.replace(/\.0\.0$/, "")}`);
  });
});
