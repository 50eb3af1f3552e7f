import { describe, expect, it } from "vitest";
import { createFleet } from "../../../src/simulator/index.ts";
import { manualClock, settle } from "../../helpers/manual-clock.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** Far longer than the test runs: only the manual clock can bring it. */
const CONNECT_WAIT_MS = 600_000;

describe("fleet pacing on the injected clock", () => {
  it("starts the next agent when the fleet's clock passes the connect wait of one that cannot connect", async () => {
    const clock = manualClock();
    // Nothing listens on port 1 of loopback: every connect is refused at once.
    const fleet = createFleet({
      count: 2,
      server: "nats://127.0.0.1:1",
      dataDir: scratchDir("ea-fleet-"),
      clock,
      startConcurrency: 1,
      connectWaitMs: CONNECT_WAIT_MS,
    });
    let started = false;
    const starting = fleet.start().then(() => (started = true));
    try {
      await waitFor("the first agent", () => fleet.agents.length === 1);
      await settle();
      expect(fleet.agents.length).toBe(1);
      clock.advance(CONNECT_WAIT_MS);
      await waitFor("the second agent", () => fleet.agents.length === 2);
      clock.advance(CONNECT_WAIT_MS);
      await waitFor("the fleet started", () => started);
    } finally {
      // Stopping waits on the same clock (shutdown budgets, the outbox's last drain): move it along.
      let stopped = false;
      const stopping = fleet.stop(1_000).finally(() => (stopped = true));
      await waitFor(
        "the fleet stopped",
        () => {
          clock.advance(100);
          return stopped;
        },
        15_000,
        10,
      );
      await stopping;
      await starting;
    }
  });
});
