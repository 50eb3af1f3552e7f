import { describe, expect, it } from "vitest";
import { judgeClockSkew, SKEW_FAIL_MS, SKEW_WARN_MS } from "../../../src/cli/doctor/clock-skew.ts";

const at = (skewMs: number, roundTripMs = 10) => ({
  serverMs: 1_000_000,
  sentMs: 1_000_000 + skewMs - roundTripMs / 2,
  receivedMs: 1_000_000 + skewMs + roundTripMs / 2,
  source: "test",
});

describe("clock skew against the server", () => {
  it("passes a clock within the warning margin, warns past it, fails past a minute", () => {
    expect(judgeClockSkew(at(300)).verdict).toBe("PASS");
    expect(judgeClockSkew(at(-(SKEW_WARN_MS + 500))).verdict).toBe("WARN");
    expect(judgeClockSkew(at(SKEW_FAIL_MS + 1_000))).toMatchObject({
      verdict: "FAIL",
      reason: expect.stringContaining("ahead of the server's"),
    });
    expect(judgeClockSkew(at(-(SKEW_FAIL_MS + 1_000))).reason).toContain("behind the server's");
  });

  it("counts only the skew beyond half the round trip: a slow answer cannot tell a small skew", () => {
    expect(judgeClockSkew(at(SKEW_WARN_MS + 500, 2 * SKEW_WARN_MS)).verdict).toBe("PASS");
  });
});
