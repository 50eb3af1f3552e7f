import { describe, expect, it } from "vitest";
import { anySubjectMatcher, SubjectPatternError, subjectMatcher } from "../../../src/cli/subject-pattern.ts";

describe("NATS subject patterns", () => {
  it.each([
    ["machine.m1.telemetry", "machine.m1.telemetry", true],
    ["machine.*.telemetry", "machine.m1.telemetry", true],
    ["machine.*.telemetry", "machine.m1.tool-installation.status", false],
    ["machine.*", "machine.m1.telemetry", false],
    ["machine.>", "machine.m1.telemetry", true],
    ["machine.>", "machine", false],
    ["machine.m1.>", "machine.m1.tool-installation.status", true],
    ["*.*.config.status", "machine.m1.config.status", true],
    ["machine.m1.telemetry.x", "machine.m1.telemetry", false],
  ])("%s against %s: %s", (pattern, subject, expected) => {
    expect(subjectMatcher(pattern)(subject)).toBe(expected);
  });

  it("refuses malformed patterns, and matches everything without one", () => {
    expect(() => subjectMatcher("machine.>.telemetry")).toThrow(SubjectPatternError);
    expect(() => subjectMatcher("machine..telemetry")).toThrow(/empty token/);
    expect(anySubjectMatcher([])("anything")).toBe(true);
    expect(anySubjectMatcher(["a.b", "c.>"])("c.d.e")).toBe(true);
  });
});
