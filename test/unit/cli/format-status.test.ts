import { describe, expect, it } from "vitest";
import type { AgentStatus } from "../../../src/agent/status.ts";
import { formatStatus, staleFileWarning } from "../../../src/cli/status-command.ts";

const status = (update: unknown): AgentStatus => ({
  machineId: "m1",
  version: "1.2.0",
  pid: 42,
  startedAt: "2026-11-23T10:00:00.000Z",
  uptimeSeconds: 90,
  connection: { state: "connected", server: "nats://127.0.0.1:4222", reconnects: 0 },
  heartbeatSeconds: 60,
  outbox: { pendingCount: 0, pendingBytes: 0, oldestPendingAgeMs: null, lastSequence: 7, deliveredCount: 7, evictedTelemetry: 0, evictedState: 0, deadLetters: 0, heldInMemory: 0, sequenceSkip: null, lastError: null },
  lastErrors: [],
  capabilities: { update },
  writtenAt: "2026-11-23T10:01:30.000Z",
});

describe("edge-agent status, for a person", () => {
  it("says which binary runs: the packaged one, or an installed update, and a trial in progress", () => {
    expect(formatStatus({ source: "live", status: status({ runningVersion: "1.2.0", active: null, trial: null, restartPending: false }) })).toContain("  update:     running 1.2.0 (the packaged binary)");
    const onTrial = formatStatus({ source: "live", status: status({ runningVersion: "1.2.0", active: "1.2.0", trial: { version: "1.3.0", startedAt: "2026-11-23T10:01:00.000Z" }, restartPending: true }) });
    expect(onTrial).toContain("  update:     running 1.2.0 (installed update 1.2.0); on trial: 1.3.0 since 2026-11-23T10:01:00.000Z; restarting into it");
  });

  it("says when the local status file is stale, and why: no agent, or an agent that cannot write it (a full disk)", () => {
    const current = { ageSeconds: 12, agentPid: 4242, freeBytes: 0 };
    expect(staleFileWarning(current)).toBeNull();
    expect(staleFileWarning({ ...current, ageSeconds: 125 })).toBe(
      "the status file is 2m 5s old (the agent rewrites it every 10s): the agent (pid 4242) runs but cannot write it: the data dir's file system is full (ENOSPC, 0 B free); what follows is stale",
    );
    expect(staleFileWarning({ ageSeconds: 125, agentPid: 4242, freeBytes: 50 * 1024 * 1024 })).toContain('runs but cannot write it (see its log: "cannot write the status file")');
    expect(staleFileWarning({ ageSeconds: 3_600, agentPid: null, freeBytes: 0 })).toBe(
      "the status file is 1h old (the agent rewrites it every 10s): no agent runs on this data dir; this is what it knew when it stopped",
    );
    const shown = formatStatus({ source: "local-file", liveError: "connection refused", status: status(null), localFile: { ...current, ageSeconds: 125 } });
    expect(shown.split("\n")[2]).toMatch(/^ {2}warning: {4}the status file is 2m 5s old/);
  });
});
