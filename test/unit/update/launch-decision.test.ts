import { describe, expect, it } from "vitest";
import {
  decideLaunch,
  HEALTH_WINDOW_MS,
  type LaunchContext,
  MAX_ROLLED_BACK_REMEMBERED,
  MAX_TRIAL_LAUNCHES,
  promoteTrial,
} from "../../../src/update/launch-decision.ts";
import { EMPTY_UPDATE_STATE, type InstalledBinary, type UpdateState } from "../../../src/update/update-state.ts";

const committedAt = Date.parse("2026-11-23T10:00:00.000Z");
let ids = 0;
const at = (offsetMs: number, selfVersion = "1.0.0"): LaunchContext => ({
  selfVersion,
  nowMs: committedAt + offsetMs,
  newId: () => {
    ids += 1;
    return `id-${ids}`;
  },
});
const binary = (version: string): InstalledBinary => ({
  version,
  path: `/var/lib/edge-agent/update/versions/${version}/edge-agent`,
  sha256: "a".repeat(64),
  size: 1000,
});
const withTrial = (version: string, launches: number, previous: InstalledBinary | null = null): UpdateState => ({
  ...EMPTY_UPDATE_STATE,
  active: previous,
  trial: {
    ...binary(version),
    startedAt: new Date(committedAt).toISOString(),
    launches,
    previous,
    fromVersion: previous?.version ?? "1.0.0",
    causationId: "cmd-1",
  },
});

describe("what the packaged binary runs when the service manager starts it", () => {
  it("runs itself when nothing was ever installed", () => {
    expect(decideLaunch(EMPTY_UPDATE_STATE, at(0))).toEqual({ kind: "run-here", state: EMPTY_UPDATE_STATE });
  });

  it("runs a trial inside its health window, and counts the start before it runs", () => {
    const decision = decideLaunch(withTrial("1.1.0", 0), at(1_000));
    expect(decision.kind).toBe("exec");
    if (decision.kind !== "exec") return;
    expect(decision.binary.version).toBe("1.1.0");
    expect(decision.trial).toBe(true);
    expect(decision.state.trial?.launches).toBe(1);
  });

  it("rolls back a trial that did not report healthy within 90 s, to the packaged binary, and says why", () => {
    const decision = decideLaunch(withTrial("1.1.0", 1), at(HEALTH_WINDOW_MS + 1));
    expect(decision.kind).toBe("run-here");
    expect(decision.state.trial).toBeNull();
    expect(decision.state.active).toBeNull();
    expect(decision.state.rolledBack).toEqual([
      expect.objectContaining({
        version: "1.1.0",
        reason: expect.stringMatching(/did not report healthy within 90 s/),
      }),
    ]);
    expect(decision.state.pendingReports).toEqual([
      expect.objectContaining({
        causationId: "cmd-1",
        body: expect.objectContaining({ version: "1.1.0", runningVersion: "1.0.0", state: "ROLLED_BACK" }),
      }),
    ]);
  });

  it("rolls back a trial that keeps stopping before it is healthy (a crash loop), even inside the window", () => {
    const decision = decideLaunch(withTrial("1.1.0", MAX_TRIAL_LAUNCHES), at(5_000));
    expect(decision.kind).toBe("run-here");
    expect(decision.state.rolledBack[0]?.reason).toMatch(/stopped 3 times before reporting healthy/);
  });

  it("rolls back to the last known good installed version, not to the packaged one", () => {
    const decision = decideLaunch(withTrial("1.2.0", MAX_TRIAL_LAUNCHES, binary("1.1.0")), at(5_000));
    expect(decision.kind).toBe("exec");
    if (decision.kind !== "exec") return;
    expect(decision.binary.version).toBe("1.1.0");
    expect(decision.trial).toBe(false);
    expect(decision.state.active?.version).toBe("1.1.0");
    expect(decision.state.pendingReports[0]?.body).toMatchObject({
      version: "1.2.0",
      runningVersion: "1.1.0",
      state: "ROLLED_BACK",
    });
  });

  it("runs the active version while it is newer than the package, and drops it once a package upgrade catches up", () => {
    const state = { ...EMPTY_UPDATE_STATE, active: binary("1.1.0") };
    expect(decideLaunch(state, at(0)).kind).toBe("exec");
    const upgraded = decideLaunch(state, at(0, "1.1.0"));
    expect(upgraded).toEqual({ kind: "run-here", state: { ...state, active: null } });
    expect(decideLaunch(withTrial("1.1.0", 0), at(0, "2.0.0")).kind).toBe("run-here");
  });

  it("promotes a healthy trial to the active version and reports UPDATED for its command", () => {
    const promoted = promoteTrial(
      {
        ...withTrial("1.1.0", 1),
        rolledBack: [{ version: "1.1.0", at: new Date(committedAt).toISOString(), reason: "earlier" }],
      },
      at(10_000),
    );
    expect(promoted.active).toEqual(binary("1.1.0"));
    expect(promoted.trial).toBeNull();
    expect(promoted.rolledBack).toEqual([]);
    expect(promoted.pendingReports).toEqual([
      expect.objectContaining({
        causationId: "cmd-1",
        body: expect.objectContaining({ version: "1.1.0", state: "UPDATED" }),
      }),
    ]);
  });

  it("remembers the newest rolled-back versions only, so the state file stays small", () => {
    const old = Array.from({ length: MAX_ROLLED_BACK_REMEMBERED }, (_, index) => ({
      version: `0.0.${index}`,
      at: new Date(committedAt).toISOString(),
      reason: "old",
    }));
    const decision = decideLaunch({ ...withTrial("1.1.0", MAX_TRIAL_LAUNCHES), rolledBack: old }, at(5_000));
    expect(decision.state.rolledBack).toHaveLength(MAX_ROLLED_BACK_REMEMBERED);
    expect(decision.state.rolledBack.at(-1)?.version).toBe("1.1.0");
    expect(decision.state.rolledBack[0]?.version).toBe("0.0.1");
  });
});
