import { describe, expect, it } from "vitest";
import { accountFor } from "../../../faults/support/ledger.ts";

const event = (machineId: string, sequence: number, eventId = `${machineId}-${sequence}`) => ({
  machineId,
  sequence,
  eventId,
});

describe("the fault suite's ledger", () => {
  it("finds nothing wrong in a clean run, per machine", () => {
    const report = accountFor([event("a", 1), event("a", 2), event("b", 1)]);
    expect(report).toMatchObject({ stored: 3, distinctEvents: 3, duplicated: 0, reusedSequences: 0, lost: 0 });
  });

  it("counts extra copies of an event, and a number given to two events, apart", () => {
    const report = accountFor([event("a", 1), event("a", 1), event("a", 2), event("a", 2, "other")]);
    expect(report).toMatchObject({ duplicated: 1, reusedSequences: 1, lost: 0 });
  });

  it("counts holes below the highest number, and above it up to what the device handed out, but not what it declared skipped", () => {
    const report = accountFor([event("a", 1), event("a", 4)], {
      lastHandedOut: new Map([
        ["a", 6],
        ["b", 2],
      ]),
      skipped: new Map([["a", new Set([2])]]),
    });
    expect(report.lost).toBe(3 + 2);
    expect(report.missingExamples).toEqual({ a: [3, 5, 6], b: [1, 2] });
  });
});
