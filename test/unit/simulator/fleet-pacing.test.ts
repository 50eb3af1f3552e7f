import { describe, expect, it } from "vitest";
import { createFleet, type Fleet, type FleetEvent, simulatedMachineId } from "../../../src/simulator/index.ts";
import { type ManualClock, manualClock, settle } from "../../helpers/manual-clock.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** Far longer than the test runs: only the manual clock can bring it. */
const CONNECT_WAIT_MS = 600_000;
/** How far the clock moves at most while a fleet stops: a small part of the connect wait. */
const STOP_CLOCK_BUDGET_MS = 60_000;

/** Two agents, one start slot, a server that refuses: each slot waits out its connect wait. */
function refusedFleet(clock: ManualClock): { fleet: Fleet; started: string[] } {
  const started: string[] = [];
  const fleet = createFleet({
    count: 2,
    // Nothing listens on port 1 of loopback: every connect is refused at once.
    server: "nats://127.0.0.1:1",
    dataDir: scratchDir("ea-fleet-"),
    clock,
    startConcurrency: 1,
    connectWaitMs: CONNECT_WAIT_MS,
    onEvent: (event: FleetEvent) => void (event.type === "started" && started.push(event.machineId)),
  });
  return { fleet, started };
}

/**
 * Stopping waits on the same clock (shutdown budgets, the outbox's last drain): moves it along in
 * small steps, never as far as a connect wait, until the fleet has stopped.
 */
async function stopOnClock(fleet: Fleet, clock: ManualClock): Promise<void> {
  let stopped = false;
  const stopping = fleet.stop(1_000).finally(() => (stopped = true));
  let movedMs = 0;
  await waitFor(
    "the fleet stopped",
    () => {
      if (movedMs < STOP_CLOCK_BUDGET_MS) {
        clock.advance(100);
        movedMs += 100;
      }
      return stopped;
    },
    15_000,
    10,
  );
  await stopping;
}

describe("fleet pacing on the injected clock", () => {
  it("starts the next agent when the fleet's clock passes the connect wait of one that cannot connect", async () => {
    const clock = manualClock();
    const { fleet, started } = refusedFleet(clock);
    let fleetStarted = false;
    const starting = fleet.start().then(() => (fleetStarted = true));
    try {
      // Started, and its slot waiting on the clock: only then does moving the clock count.
      await waitFor("the first agent started", () => started.length === 1);
      clock.advance(CONNECT_WAIT_MS - 1);
      await settle();
      expect(fleet.agents.length).toBe(1);
      clock.advance(1);
      await waitFor("the second agent started", () => started.length === 2);
      expect(started).toEqual([simulatedMachineId(0), simulatedMachineId(1)]);
      clock.advance(CONNECT_WAIT_MS);
      await waitFor("the fleet started", () => fleetStarted);
    } finally {
      await stopOnClock(fleet, clock);
      await starting;
    }
  });

  it("stops at once while a start slot waits for a connect, without the clock passing the wait", async () => {
    const clock = manualClock();
    const { fleet, started } = refusedFleet(clock);
    const starting = fleet.start();
    await waitFor("the first agent started", () => started.length === 1);
    await stopOnClock(fleet, clock);
    await starting;
    // The slot gave up its wait: the second agent was never made.
    expect(fleet.agents.map((entry) => entry.machineId)).toEqual([simulatedMachineId(0)]);
    // Never connected: it has read no command feed.
    expect(fleet.summary()).toMatchObject({
      count: 2,
      started: 1,
      connected: 0,
      feedsRead: 0,
      feedsReadLatestAtMs: null,
    });
  });
});
