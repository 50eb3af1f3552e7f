import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/runtime/logger.ts";

/** The keys of a JSON object's top level, in order, repeats included (JSON.parse would hide them). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let index = 0;
  let expectKey = false;
  while (index < line.length) {
    const char = line[index] as string;
    if (char === '"') {
      let end = index + 1;
      while (line[end] !== '"') end += line[end] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(index, end + 1)) as string);
      expectKey = false;
      index = end + 1;
      continue;
    }
    if (char === "{" || char === "[") depth += 1;
    if (char === "}" || char === "]") depth -= 1;
    expectKey = depth === 1 && (char === "{" || char === ",");
    index += 1;
  }
  return keys;
}

describe("log lines", () => {
  it("are JSON with unique keys: a field a call repeats from the logger's own is written once", () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(
          ...chunk
            .toString()
            .split("\n")
            .filter((line) => line !== ""),
        );
        done();
      },
    });
    const logger = createLogger({ level: "info", fields: { instanceId: "bridge-1" }, destination });
    logger.info({ group: "g", instanceId: "bridge-1", brokers: ["k:9092"] }, "edge-bridge starting");
    logger.child({ shard: "telemetry" }).warn({ instanceId: "bridge-1", reason: "x" }, "retrying");
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      const keys = topLevelKeys(line);
      expect(
        keys.filter((key) => key === "instanceId"),
        line,
      ).toHaveLength(1);
      expect(new Set(keys).size, line).toBe(keys.length);
      expect(JSON.parse(line)).toMatchObject({ instanceId: "bridge-1" });
    }
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      group: "g",
      brokers: ["k:9092"],
      msg: "edge-bridge starting",
    });
  });
});
