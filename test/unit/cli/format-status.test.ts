import { describe, expect, it } from "vitest";
import type { AgentStatus } from "../../../src/agent/status.ts";
import {
  agentStopped,
  chooseStatusDataDir,
  formatStatus,
  type Presence,
  type StatusReport,
  staleFileWarning,
} from "../../../src/cli/status-command.ts";
import { NO_STREAM_REASON } from "../../../src/transport/jetstream-publisher.ts";

const status = (update: unknown, extra: Partial<AgentStatus> = {}): AgentStatus => ({
  machineId: "m1",
  version: "1.2.0",
  pid: 42,
  startedAt: "2026-11-23T10:00:00.000Z",
  uptimeSeconds: 90,
  connection: { state: "connected", server: "nats://127.0.0.1:4222", reconnects: 0 },
  heartbeatSeconds: 60,
  outbox: {
    pendingCount: 0,
    pendingBytes: 0,
    oldestPendingAgeMs: null,
    lastSequence: 7,
    deliveredCount: 7,
    evictedTelemetry: 0,
    evictedState: 0,
    deadLetters: 0,
    heldInMemory: 0,
    sequenceSkip: null,
    lastError: null,
    deliveryProblem: null,
  },
  commands: {
    trust: "signed",
    feeds: 9,
    lastCheckedAt: "2026-11-23T10:01:00.000Z",
    problem: null,
    pending: 0,
    running: 0,
  },
  lastErrors: [],
  capabilities: { update },
  writtenAt: "2026-11-23T10:01:30.000Z",
  ...extra,
});
const live = (agentStatus: AgentStatus): StatusReport => ({
  source: "live",
  running: true,
  stoppedSince: null,
  dataDir: "/var/lib/edge-agent",
  status: agentStatus,
});

describe("edge-agent status, for a person", () => {
  it("says which binary runs: the packaged one, or an installed update, and a trial in progress", () => {
    expect(
      formatStatus(live(status({ runningVersion: "1.2.0", active: null, trial: null, restartPending: false }))),
    ).toContain("  update:     running 1.2.0 (the packaged binary)");
    expect(
      formatStatus(
        live(
          status({ runningVersion: "1.2.0", active: null, trial: null, restartPending: false, runningFrom: "sources" }),
        ),
      ),
    ).toContain("  update:     running 1.2.0 (from the sources, with Node: a checkout)");
    const onTrial = formatStatus(
      live(
        status({
          runningVersion: "1.2.0",
          active: "1.2.0",
          trial: { version: "1.3.0", startedAt: "2026-11-23T10:01:00.000Z" },
          restartPending: true,
        }),
      ),
    );
    expect(onTrial).toContain(
      "  update:     running 1.2.0 (installed update 1.2.0); on trial: 1.3.0 since 2026-11-23T10:01:00.000Z; restarting into it",
    );
  });

  it("says when the local status file is stale, and why: no agent, or an agent that cannot write it (a full disk)", () => {
    const current = { ageSeconds: 12, agentPid: 4242, writerAlive: true, freeBytes: 0 };
    expect(staleFileWarning(current)).toBeNull();
    expect(staleFileWarning({ ...current, ageSeconds: 125 })).toBe(
      "the status file is 2m 5s old (the agent rewrites it every 10s): the agent (pid 4242) runs but cannot write it: the data dir's file system is full (ENOSPC, 0 B free); what follows is stale",
    );
    expect(staleFileWarning({ ageSeconds: 125, agentPid: 4242, freeBytes: 50 * 1024 * 1024 })).toContain(
      'runs but cannot write it (see its log: "cannot write the status file")',
    );
    expect(staleFileWarning({ ageSeconds: 3_600, agentPid: null, freeBytes: 0 })).toBe(
      "the status file is 1h old (the agent rewrites it every 10s): no agent runs on this data dir; this is what it knew when it stopped",
    );
    const shown = formatStatus({
      source: "local-file",
      running: true,
      stoppedSince: null,
      dataDir: "/d",
      liveError: "connection refused",
      status: status(null),
      localFile: { ...current, ageSeconds: 125 },
    });
    expect(shown.split("\n")[2]).toMatch(/^ {2}warning: {4}the status file is 2m 5s old/);
  });

  it("tells a stopped agent apart: nobody holds the data dir and the file is old, or its writer has ended", () => {
    expect(agentStopped({ ageSeconds: 5, agentPid: 4242, writerAlive: true, freeBytes: null })).toBe(false);
    // A full disk: the file is old but the agent holds the data dir.
    expect(agentStopped({ ageSeconds: 600, agentPid: 4242, writerAlive: true, freeBytes: 0 })).toBe(false);
    // A clean stop a moment ago: fresh file, no holder, the writer is gone.
    expect(agentStopped({ ageSeconds: 2, agentPid: null, writerAlive: false, freeBytes: null })).toBe(true);
    // An old file whose pid now belongs to another process.
    expect(agentStopped({ ageSeconds: 600, agentPid: null, writerAlive: true, freeBytes: null })).toBe(true);
    // Holder not known (its pid file unreadable) but the writer lives and the file is current.
    expect(agentStopped({ ageSeconds: 5, agentPid: null, writerAlive: true, freeBytes: null })).toBe(false);
  });

  it("a stopped agent is 'not running since T', with no connection or uptime shown as if current", () => {
    const shown = formatStatus({
      source: "local-file",
      running: false,
      stoppedSince: "2026-11-23T10:01:31.000Z",
      dataDir: "/var/lib/edge-agent",
      liveError: "connection refused",
      status: status(null),
      localFile: { ageSeconds: 300, agentPid: null, writerAlive: false, freeBytes: null },
    });
    const lines = shown.split("\n");
    expect(lines[0]).toBe("edge-agent 1.2.0  machine m1  not running since 2026-11-23T10:01:31.000Z");
    expect(lines[2]).toBe(
      "  last run:   pid 42, started 2026-11-23T10:00:00.000Z, up 1m 30s; its link was connected to nats://127.0.0.1:4222",
    );
    expect(shown).not.toMatch(/connection: connected|uptime:/);
  });

  it("shows config and telemetry as readable lines, never raw JSON", () => {
    const shown = formatStatus(
      live(
        status(null, {
          capabilities: {
            config: {
              revision: 12,
              lastStatus: {
                revision: 12,
                status: "REJECTED",
                error: 'unknown setting "heartbeatSecs"',
                timestamp: "2026-11-23T10:01:00.000Z",
              },
              watchProblem: null,
            },
            telemetry: { samples: 30, inventoriesSent: 1, skippedOverlaps: 0, missedRuns: 2, lastError: null },
            extra: { mode: "fast", limits: { low: 1 } },
          },
        }),
      ),
    );
    expect(shown).toContain(
      '  config:     running revision 12; last change: revision 12 REJECTED at 2026-11-23T10:01:00.000Z: unknown setting "heartbeatSecs"',
    );
    expect(shown).toContain(
      "  telemetry:  30 samples and 1 inventory taken into the outbox; 2 runs missed (the event loop was busy at the time)",
    );
    expect(shown).not.toContain("skipped");
    expect(shown).toContain("  extra:      mode fast, limits.low 1");
    expect(shown).not.toMatch(/[{}]/);
  });

  it("says whose conventions it follows, loudly where they loosen ours, and what came without a sha256", () => {
    const sha = "ab".repeat(32);
    const shown = formatStatus(
      live(
        status(
          {
            runningVersion: "1.2.0",
            active: "1.3.0",
            trial: null,
            restartPending: false,
            download: { file: "edge-agent", link: "https://h/a", size: 10, sha256: sha, verified: false },
          },
          {
            commands: { trust: "unsigned", feeds: 9, lastCheckedAt: null, problem: null, pending: 0, running: 0 },
            platform: {
              platform: "openframe",
              commands: "unsigned",
              downloadsWithoutChecksum: { allowed: true, hosts: ["github.com", "*.githubusercontent.com"] },
              uninstall: "unsigned",
              openframeArguments: { secretFile: null, tokenPath: null },
            },
            capabilities: {
              update: {
                runningVersion: "1.2.0",
                active: "1.3.0",
                trial: null,
                restartPending: false,
                download: { file: "edge-agent", link: "https://h/a", size: 10, sha256: sha, verified: false },
              },
              tools: [
                {
                  toolAgentId: "fleet",
                  version: "4.1",
                  state: "INSTALLED",
                  error: null,
                  agentToolId: null,
                  downloads: [
                    { file: "tool", link: "https://h/f", size: 2048, sha256: sha, verified: false },
                    { file: "asset:osqueryd", link: "https://h/o", size: 9, sha256: sha, verified: true },
                  ],
                },
              ],
            },
          },
        ),
      ),
    );
    expect(shown).toContain(
      "  commands:   UNSIGNED ACCEPTED (platform openframe: OpenFrame signs no command; safe only in the account layout)",
    );
    expect(shown).toContain(
      "  platform:   openframe (OpenFrame's conventions); downloads without a sha256 taken over HTTPS from github.com, *.githubusercontent.com (their sha256 reported); UNSIGNED UNINSTALL ACCEPTED (allowUnsignedUninstall: safe only in the account layout)",
    );
    expect(shown).toContain(`      tool taken without a sha256: 2048 bytes, sha256 ${sha}`);
    expect(shown).not.toContain("asset:osqueryd taken");
    expect(shown).toContain(`              edge-agent taken without a sha256: 10 bytes, sha256 ${sha}`);

    const ours = formatStatus(
      live(
        status(null, {
          platform: {
            platform: "edge",
            commands: "signed",
            downloadsWithoutChecksum: { allowed: false, hosts: [] },
            uninstall: "signed",
            openframeArguments: { secretFile: null, tokenPath: null },
          },
        }),
      ),
    );
    expect(ours).toContain("  platform:   edge; every download needs a sha256; uninstall signed only");
  });

  it("when events wait because the server has no streams, says so and names dev-setup", () => {
    const waiting = status(null);
    const shown = formatStatus(
      live({ ...waiting, outbox: { ...waiting.outbox, pendingCount: 3, deliveryProblem: NO_STREAM_REASON } }),
    );
    expect(shown).toContain(
      "  delivery:   events wait in the outbox: the server has no stream for them (or JetStream is off); create the streams with edge-agent dev-setup",
    );
    const other = formatStatus(live({ ...waiting, outbox: { ...waiting.outbox, deliveryProblem: "timeout" } }));
    expect(other).toContain("  delivery:   events wait in the outbox: timeout");
  });

  it("while the link is down, says events wait for the link, not for the last publish error", () => {
    const offline = status(null, {
      connection: { state: "disconnected", server: null, reconnects: 1 },
    });
    const shown = formatStatus(
      live({
        ...offline,
        outbox: { ...offline.outbox, pendingCount: 4, oldestPendingAgeMs: 65_000, deliveryProblem: "timeout" },
      }),
    );
    expect(shown).toContain(
      "  delivery:   events wait in the outbox until the NATS link is up (it is disconnected; last publish error: timeout)",
    );
    expect(shown).toContain("4 pending (0 B), oldest 1m 5s");
  });

  it("never shows a dash for the oldest event while events wait", () => {
    const waiting = status(null);
    expect(formatStatus(live({ ...waiting, outbox: { ...waiting.outbox, pendingCount: 14 } }))).toContain(
      "14 pending (0 B), oldest ? (the outbox could not be read)",
    );
    expect(formatStatus(live(waiting))).toContain("0 pending (0 B), oldest -");
  });

  it("names the running agent's machine id when the settings name another", () => {
    const shown = formatStatus({
      ...live(status(null)),
      machineIdNote: "the running agent's machine id (these settings say old-id)",
    });
    expect(shown).toContain("  machine id: the running agent's machine id (these settings say old-id)");
  });
});

describe("which data dir `status` reads", () => {
  const probeOf =
    (map: Record<string, Presence>) =>
    async (path: string): Promise<Presence> =>
      map[path] ?? "absent";
  const own = "/home/u/.local/state/edge-agent";
  const system = "/var/lib/edge-agent";

  it("an ordinary user with no agent state of their own gets the system agent's, when readable", async () => {
    expect(
      await chooseStatusDataDir(own, {
        dataDirGiven: false,
        systemDataDir: system,
        probe: probeOf({ [`${system}/status.json`]: "readable", [system]: "readable" }),
      }),
    ).toEqual({
      dataDir: system,
      note: `the system agent's (your own data dir ${own} has no agent state)`,
    });
  });

  it("is told to use sudo when the system agent's state is not readable to them", async () => {
    for (const probe of [probeOf({ [`${system}/status.json`]: "unreadable" }), probeOf({ [system]: "unreadable" })]) {
      await expect(chooseStatusDataDir(own, { dataDirGiven: false, systemDataDir: system, probe })).rejects.toThrow(
        `the system agent's state in ${system} is readable by its own user only: run sudo edge-agent status (your own data dir ${own} has no agent state)`,
      );
    }
  });

  it("keeps their own data dir when it has agent state, when one was given, or when there is no system agent", async () => {
    const everything = probeOf({ [`${own}/machine-id`]: "readable", [`${system}/status.json`]: "readable" });
    expect(await chooseStatusDataDir(own, { dataDirGiven: false, systemDataDir: system, probe: everything })).toEqual({
      dataDir: own,
    });
    expect(
      await chooseStatusDataDir(own, {
        dataDirGiven: true,
        systemDataDir: system,
        probe: probeOf({ [`${system}/status.json`]: "readable" }),
      }),
    ).toEqual({ dataDir: own });
    expect(await chooseStatusDataDir(own, { dataDirGiven: false, systemDataDir: system, probe: probeOf({}) })).toEqual({
      dataDir: own,
    });
  });

  it("lists the remote tasks running (id, pid, since) and how many wait, and says loudly when unsigned ones run", () => {
    const tasks = {
      accepts: "unsigned",
      enabled: true,
      confine: "working-dir",
      maxConcurrent: 2,
      running: [
        { taskId: "backup-7", pid: 4242, since: "2026-11-23T10:00:30.000Z" },
        { taskId: "inventory-2", pid: null, since: null },
      ],
      queued: 3,
    };
    const shown = formatStatus(live(status(null, { capabilities: { tasks } })));
    expect(shown).toContain(
      "  tasks:      UNSIGNED TASKS RUN (tasks.allowUnsigned: development only); confined to their working dir; 2 running, 3 queued (at most 2 at once)\n    backup-7 pid 4242 since 2026-11-23T10:00:30.000Z\n    inventory-2 pid (starting)",
    );
    expect(
      formatStatus(
        live(status(null, { capabilities: { tasks: { ...tasks, accepts: "signed", running: [], queued: 0 } } })),
      ),
    ).toContain("  tasks:      signed only; confined to their working dir; 0 running, 0 queued (at most 2 at once)");
  });
});
