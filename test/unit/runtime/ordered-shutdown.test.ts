import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { runShutdownSteps } from "../../../src/runtime/ordered-shutdown.ts";
import { createLogger } from "../../../src/runtime/logger.ts";

describe("runShutdownSteps", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const logger = createLogger({ level: "silent" });

  it("leaves a hung step behind at the budget and still runs the ones after it, in order", async () => {
    const ran: string[] = [];
    const result = runShutdownSteps(
      [
        { name: "quick", stop: () => void ran.push("quick") },
        { name: "hung download", stop: () => new Promise<void>(() => ran.push("hung")) },
        { name: "outbox", stop: () => void ran.push("outbox") },
      ],
      { budgetMs: 4_000, nowMs: () => Date.now(), logger },
    );
    await vi.advanceTimersByTimeAsync(4_000);
    await expect(result).resolves.toEqual({ late: ["hung download"], failed: [] });
    expect(ran).toEqual(["quick", "hung", "outbox"]);
  });

  it("goes on past a step that throws and says which one failed", async () => {
    const ran: string[] = [];
    const result = await runShutdownSteps(
      [
        { name: "rpc service", stop: () => Promise.reject(new Error("permission denied")) },
        { name: "outbox", stop: () => void ran.push("outbox") },
      ],
      { budgetMs: 1_000, nowMs: () => Date.now(), logger },
    );
    expect(result).toEqual({ late: [], failed: ["rpc service"] });
    expect(ran).toEqual(["outbox"]);
  });
});
