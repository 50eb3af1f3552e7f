import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, createLoggerFamily } from "../../../src/runtime/logger.ts";

describe("one agent's loggers", () => {
  it("takes a level for its own root and children only: the shared parent and another agent keep theirs", () => {
    const lines: string[] = [];
    const shared = createLogger({
      level: "info",
      destination: new Writable({
        write: (chunk, _encoding, done) => {
          lines.push(String(chunk));
          done();
        },
      }),
    });
    const agentA = createLoggerFamily(shared.child({ machineId: "a" }));
    const agentB = createLoggerFamily(shared.child({ machineId: "b" }));
    const toolsA = agentA.child({ component: "tools" });
    const toolsB = agentB.child({ component: "tools" });
    agentA.setLevel("error");
    expect([agentA.root.level, toolsA.level]).toEqual(["error", "error"]);
    expect([shared.level, agentB.root.level, toolsB.level]).toEqual(["info", "info", "info"]);
    toolsA.info("hidden");
    toolsB.info("shown");
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual(["shown"]);
  });
});
