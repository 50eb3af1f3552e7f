import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/runtime/logger.ts";
import { runShutdownSteps } from "../../../src/runtime/ordered-shutdown.ts";
import { manualClock, settle } from "../../helpers/manual-clock.ts";

describe("runShutdownSteps", () => {
  const logger = createLogger({ level: "silent" });

  it("leaves a hung step behind once the injected clock passes the budget, and still runs the ones after it, in order", async () => {
    const clock = manualClock();
    const ran: string[] = [];
    let outcome: { late: string[]; failed: string[] } | null = null;
    void runShutdownSteps(
      [
        { name: "quick", stop: () => void ran.push("quick") },
        { name: "hung download", stop: () => new Promise<void>(() => ran.push("hung")) },
        { name: "outbox", stop: () => void ran.push("outbox") },
      ],
      // Far longer than the test runs: only the injected clock can bring the budget's end.
      { budgetMs: 600_000, clock, logger },
    ).then((result) => (outcome = result));
    await settle();
    expect(ran).toEqual(["quick", "hung"]);
    clock.advance(599_999);
    await settle();
    expect(outcome).toBeNull();
    clock.advance(1);
    await settle();
    expect(outcome).toEqual({ late: ["hung download"], failed: [] });
    expect(ran).toEqual(["quick", "hung", "outbox"]);
    expect(clock.pending).toBe(0);
  });

  it("goes on past a step that throws and says which one failed", async () => {
    const clock = manualClock();
    const ran: string[] = [];
    const result = await runShutdownSteps(
      [
        { name: "rpc service", stop: () => Promise.reject(new Error("permission denied")) },
        { name: "outbox", stop: () => void ran.push("outbox") },
      ],
      { budgetMs: 1_000, clock, logger },
    );
    expect(result).toEqual({ late: [], failed: ["rpc service"] });
    expect(ran).toEqual(["outbox"]);
    expect(clock.pending).toBe(0);
  });
});
