import { describe, expect, it } from "vitest";
import { EventType } from "../../../src/contracts/index.ts";
import { commandOutcomeOf } from "../../../src/metrics/index.ts";

describe("command outcomes from result events", () => {
  it("counts final states only, by command kind", () => {
    expect(
      commandOutcomeOf({
        type: EventType.toolInstallationStatus,
        body: { toolAgentId: "t", state: "INSTALLED", timestamp: "x" },
      }),
    ).toEqual({ command: "tool", outcome: "installed" });
    expect(
      commandOutcomeOf({
        type: EventType.toolInstallationStatus,
        body: { toolAgentId: "t", state: "DOWNLOADING", timestamp: "x" },
      }),
    ).toBeNull();
    // An installed tool's liveness report is no command's outcome.
    expect(
      commandOutcomeOf({
        type: EventType.toolInstallationStatus,
        body: { toolAgentId: "t", state: "INSTALLED", timestamp: "x", connection: "DISCONNECTED" },
      }),
    ).toBeNull();
    expect(commandOutcomeOf({ type: EventType.configStatus, body: { status: "ROLLED_BACK", timestamp: "x" } })).toEqual(
      { command: "config", outcome: "rolled_back" },
    );
    expect(
      commandOutcomeOf({
        type: EventType.clientUpdateStatus,
        body: { version: "1.0.0", runningVersion: "0.9.0", state: "REJECTED", timestamp: "x" },
      }),
    ).toEqual({ command: "client-update", outcome: "rejected" });
    expect(
      commandOutcomeOf({
        type: EventType.clientUninstallStatus,
        body: { state: "REJECTED", error: "unsigned", timestamp: "x" },
      }),
    ).toEqual({ command: "client-uninstall", outcome: "rejected" });
    expect(commandOutcomeOf({ type: EventType.hostname, body: { hostname: "h" } })).toBeNull();
  });
});
