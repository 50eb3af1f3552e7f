import { describe, expect, it } from "vitest";
import { describeIssues, echoInput, truncateInput } from "../../../src/runtime/echo.ts";

describe("echoing input back", () => {
  it("keeps short values whole and cuts long ones, saying how much was left out", () => {
    expect(truncateInput("abc")).toBe("abc");
    expect(truncateInput("x".repeat(1_000_000))).toBe(`${"x".repeat(120)}…(999880 more chars)`);
    expect(echoInput("a\nb")).toBe('"a\\nb"');
    expect(echoInput("y".repeat(500), 10)).toBe(`"${"y".repeat(10)}"…(490 more chars)`);
    expect(echoInput({ big: "z".repeat(10_000) }).length).toBeLessThan(200);
  });

  it("lists a few validation issues in one short line, however many there are", () => {
    const issues = Array.from({ length: 50_000 }, (_, index) => ({
      path: ["assets", index, "id"],
      message: `Invalid input ${"q".repeat(1_000)}`,
    }));
    const line = describeIssues(issues);
    expect(line).toMatch(/^assets\.0\.id: Invalid input q+…\(\d+ more chars\); assets\.1\.id/);
    expect(line.length).toBeLessThanOrEqual(700);
    expect(describeIssues(issues.slice(0, 6))).toMatch(/; and 1 more$/);
  });
});
