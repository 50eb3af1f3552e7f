import { afterEach, describe, expect, it } from "vitest";
import { type Outbox, openOutbox } from "../../../src/outbox/index.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { manualClock } from "../../helpers/manual-clock.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const DAY_MS = 24 * 3_600_000;

/** The remote tasks' record in the outbox's database: a task id once per machine, cancels kept for tasks to come. */
describe("TaskLedger", () => {
  let outbox: Outbox | undefined;
  afterEach(async () => {
    await outbox?.stop();
    outbox = undefined;
  });
  const open = (dataDir: string, clock = manualClock()): Outbox => {
    outbox = openOutbox({ dataDir, clock, logger: silentLogger() });
    return outbox;
  };
  const entry = (taskId: string, bodySha256 = "a".repeat(64)) => ({
    taskId,
    bodySha256,
    resultEventId: `result-of-${taskId}`,
    commandRef: "TASKS:1",
  });

  it("takes a task id once, and says who took it to every later copy, across a restart", async () => {
    const dataDir = scratchDir("edge-agent-ledger-");
    const first = open(dataDir).tasks;
    expect(first.record(entry("t-1"))).toEqual({ kind: "recorded", cancel: null });
    expect(first.record({ ...entry("t-1", "b".repeat(64)), commandRef: "FLEET_TASKS:9" })).toMatchObject({
      kind: "known",
      record: { taskId: "t-1", bodySha256: "a".repeat(64), resultEventId: "result-of-t-1", commandRef: "TASKS:1" },
    });
    await outbox?.stop();
    const again = open(dataDir).tasks;
    expect(again.record(entry("t-1"))).toMatchObject({ kind: "known", record: { resultEventId: "result-of-t-1" } });
    expect(again.find("t-2")).toBeNull();
  });

  it("keeps a cancel for a task not taken yet and hands it over when the task comes, once", () => {
    const clock = manualClock();
    const ledger = open(scratchDir("edge-agent-ledger-"), clock).tasks;
    ledger.keepCancel({
      taskId: "t-9",
      reason: "not needed",
      causationId: "cancel-1",
      expiresAtMs: clock.now() + 60_000,
    });
    const recorded = ledger.record(entry("t-9"));
    expect(recorded).toEqual({
      kind: "recorded",
      cancel: { taskId: "t-9", reason: "not needed", causationId: "cancel-1", expiresAtMs: clock.now() + 60_000 },
    });
    // An expired cancel cancels nothing.
    ledger.keepCancel({ taskId: "t-10", reason: null, causationId: "cancel-2", expiresAtMs: clock.now() + 60_000 });
    clock.advance(60_001);
    expect(ledger.record(entry("t-10"))).toEqual({ kind: "recorded", cancel: null });
  });

  it("forgets a task after 30 days, unless its processes may still run (a crash left its marker)", () => {
    const clock = manualClock();
    const ledger = open(scratchDir("edge-agent-ledger-"), clock).tasks;
    ledger.record(entry("old"));
    ledger.record(entry("still-running"));
    ledger.setMarker("still-running", "still-running:abc");
    expect(ledger.withMarkers().map((record) => record.marker)).toEqual(["still-running:abc"]);
    clock.advance(30 * DAY_MS + 1);
    ledger.record(entry("new"));
    expect(ledger.find("old")).toBeNull();
    expect(ledger.find("still-running")).toMatchObject({ marker: "still-running:abc" });
    ledger.setMarker("still-running", null);
    expect(ledger.withMarkers()).toEqual([]);
    ledger.record(entry("newer"));
    expect(ledger.find("still-running")).toBeNull();
    expect(ledger.find("new")).not.toBeNull();
  });
});
