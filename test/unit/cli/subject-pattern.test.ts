import { describe, expect, it } from "vitest";
import {
  anySubjectMatcher,
  patternCovers,
  patternsOverlap,
  SubjectPatternError,
  subjectMatcher,
} from "../../../src/cli/subject-pattern.ts";

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

describe("how two subject patterns relate", () => {
  it.each([
    ["machine.*.tool.*.update", "machine.all.tool.*.update", true, true],
    ["machine.all.tool.*.update", "machine.*.tool.*.update", true, false],
    ["machine.*.installed-agent", "user.*.installed-agent", false, false],
    ["machine.>", "machine.m1.telemetry", true, true],
    ["machine.>", "machine", false, false],
    ["machine.*", "machine.>", true, false],
    ["machine.>", "machine.*", true, true],
    ["machine.*.telemetry", "machine.*.telemetry", true, true],
    ["machine.*.telemetry", "machine.*.telemetry.x", false, false],
    ["machine.m1.*", "machine.*.telemetry", true, false],
    ["$KV.agent-config.>", "machine.>", false, false],
  ])("%s and %s: overlap %s, the first covers the second %s", (first, second, overlap, covers) => {
    expect(patternsOverlap(first, second)).toBe(overlap);
    expect(patternsOverlap(second, first)).toBe(overlap);
    expect(patternCovers(first, second)).toBe(covers);
  });
});
