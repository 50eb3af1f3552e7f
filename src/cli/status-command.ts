import { readFile, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { machineSubjects } from "../contracts/index.ts";
import { readStatusFile, STATUS_FILE, STATUS_FILE_INTERVAL_MS, type AgentStatus } from "../agent/status.ts";
import { readLockHolder } from "../runtime/data-dir-lock.ts";
import { MACHINE_ID_FILE } from "../identity/machine-id.ts";
import { inboxPrefixOf } from "../identity/permissions.ts";
import type { Settings } from "../settings/index.ts";
import { CommandError, ExitCode } from "./exit-codes.ts";
import { connectOnce } from "./one-shot-connection.ts";
import { processAlive } from "./process-alive.ts";

export interface StatusReport {
  readonly source: "live" | "local-file";
  readonly status: AgentStatus;
  readonly liveError?: string;
  /** With the local file: what tells whether it is current. */
  readonly localFile?: LocalFileFacts;
}

export interface LocalFileFacts {
  /** Seconds since the file was last written (its modification time). */
  readonly ageSeconds: number;
  /** The running agent that holds the data dir, if any. */
  readonly agentPid: number | null;
  /** Bytes free for the agent on the data dir's file system (null when unknown). */
  readonly freeBytes: number | null;
}

/** Below this, the data dir's file system counts as full. */
const NEARLY_FULL_BYTES = 1024 * 1024;

async function localFileFacts(dataDir: string): Promise<LocalFileFacts> {
  const modifiedMs = (await stat(join(dataDir, STATUS_FILE))).mtimeMs;
  const holder = readLockHolder(dataDir);
  const space = await statfs(dataDir).catch(() => null);
  return {
    ageSeconds: Math.max(0, Math.round((Date.now() - modifiedMs) / 1000)),
    agentPid: holder !== null && processAlive(holder) ? holder : null,
    freeBytes: space ? space.bavail * space.bsize : null,
  };
}

/**
 * Says why the local status file is old, when it is: the agent is not running, or it runs and
 * cannot write the file (a full disk, most often). Null while the file is current.
 */
export function staleFileWarning(facts: LocalFileFacts, intervalMs = STATUS_FILE_INTERVAL_MS): string | null {
  if (facts.ageSeconds * 1000 <= 3 * intervalMs) return null;
  const age = `the status file is ${formatDuration(facts.ageSeconds)} old (the agent rewrites it every ${formatDuration(intervalMs / 1000)})`;
  if (facts.agentPid === null) return `${age}: no agent runs on this data dir; this is what it knew when it stopped`;
  const why =
    facts.freeBytes !== null && facts.freeBytes < NEARLY_FULL_BYTES
      ? `: the data dir's file system is full (ENOSPC, ${formatBytes(facts.freeBytes)} free)`
      : " (see its log: \"cannot write the status file\")";
  return `${age}: the agent (pid ${facts.agentPid}) runs but cannot write it${why}; what follows is stale`;
}

/** The id the agent runs under: from settings, the generated-id file, or the status file it left. */
async function knownMachineId(settings: Settings): Promise<string | null> {
  if (settings.machineId) return settings.machineId;
  try {
    return (await readFile(join(settings.dataDir, MACHINE_ID_FILE), "utf8")).trim();
  } catch {
    return (await readStatusFile(settings.dataDir).catch(() => null))?.machineId ?? null;
  }
}

/** Asks the running agent over NATS; falls back to the status file the daemon keeps. */
export async function fetchStatus(settings: Settings): Promise<StatusReport> {
  const machineId = await knownMachineId(settings);
  if (!machineId) {
    throw new CommandError(`no machine id: the agent has never run with data dir ${settings.dataDir} (set EDGE_AGENT_MACHINE_ID or run the agent once)`, ExitCode.failure);
  }
  let liveError: string;
  try {
    // Under the machine's own identity the reply can only land in its own inbox prefix. That
    // identity may not publish to its rpc subjects (see permissions.ts): then the file answers.
    const connection = await connectOnce(settings, `${machineId}-status`, 2_000, { inboxPrefix: inboxPrefixOf(machineId, settings.inboxPrefix) });
    try {
      const reply = await connection.request(machineSubjects(machineId).rpcStatus, "", { timeout: 2_000 });
      return { source: "live", status: reply.json<AgentStatus>() };
    } finally {
      await connection.close();
    }
  } catch (error) {
    liveError = (error as Error).message;
  }
  const local = await readStatusFile(settings.dataDir);
  if (!local) throw new CommandError(`agent not reachable (${liveError}) and no local status file in ${settings.dataDir}`, ExitCode.failure);
  return { source: "local-file", status: local, liveError, localFile: await localFileFacts(settings.dataDir) };
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function formatDuration(seconds: number): string {
  const units: Array<[string, number]> = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]];
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [unit, size] of units) {
    if (rest >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.slice(0, 2).join(" ");
}

export function formatStatus(report: StatusReport): string {
  const { status } = report;
  const { outbox } = status;
  const staleWarning = report.localFile ? staleFileWarning(report.localFile) : null;
  const lines = [
    `edge-agent ${status.version}  machine ${status.machineId}  pid ${status.pid}`,
    report.source === "live"
      ? "  source:     live answer from the running agent"
      : `  source:     local status file written ${status.writtenAt} (agent not reachable: ${report.liveError ?? "unknown"})`,
    ...(staleWarning ? [`  warning:    ${staleWarning}`] : []),
    `  connection: ${status.connection.state}${status.connection.server ? ` to ${status.connection.server}` : ""} (reconnects: ${status.connection.reconnects})`,
    ...(status.connection.lastError ? [`  link error: ${status.connection.lastError}`] : []),
    `  uptime:     ${formatDuration(status.uptimeSeconds)} since ${status.startedAt}`,
    `  heartbeat:  every ${status.heartbeatSeconds}s`,
    `  outbox:     ${outbox.pendingCount} pending (${formatBytes(outbox.pendingBytes)}), oldest ${outbox.oldestPendingAgeMs === null ? "-" : formatDuration(outbox.oldestPendingAgeMs / 1000)}, last sequence ${outbox.lastSequence}, delivered ${outbox.deliveredCount}`,
    `              evicted ${outbox.evictedTelemetry} telemetry / ${outbox.evictedState} state, dead letters ${outbox.deadLetters}${outbox.heldInMemory > 0 ? `, ${outbox.heldInMemory} held in memory` : ""}`,
  ];
  if (outbox.lastError) lines.push(`  outbox error: ${outbox.lastError}`);
  if (outbox.sequenceSkip) {
    lines.push(`  sequence:   started after ${outbox.sequenceSkip.through}, past numbers ${outbox.sequenceSkip.after + 1}-${outbox.sequenceSkip.through} reserved by a run that crashed (events held only in memory then are lost)`);
  }
  for (const [name, detail] of Object.entries(status.capabilities)) {
    if (name === "tools" && Array.isArray(detail)) {
      lines.push(`  tools:      ${detail.length === 0 ? "none" : ""}`);
      for (const tool of detail as Array<{ toolAgentId: string; version: string | null; state: string; error: string | null; agentToolId: string | null }>) {
        lines.push(`    ${tool.toolAgentId} ${tool.version ?? "?"} ${tool.state}${tool.agentToolId ? ` (id ${tool.agentToolId})` : ""}${tool.error ? `: ${tool.error}` : ""}`);
      }
      continue;
    }
    if (name === "update" && typeof detail === "object" && detail !== null && "runningVersion" in detail) {
      const update = detail as { runningVersion: string; active: string | null; trial: { version: string; startedAt: string } | null; restartPending: boolean };
      const installed = update.active ? `installed update ${update.active}` : "the packaged binary";
      const trial = update.trial ? `; on trial: ${update.trial.version} since ${update.trial.startedAt}` : "";
      lines.push(`  update:     running ${update.runningVersion} (${installed})${trial}${update.restartPending ? "; restarting into it" : ""}`);
      continue;
    }
    lines.push(`  ${name}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  if (status.lastErrors.length > 0) {
    lines.push("  recent errors:");
    for (const entry of status.lastErrors) lines.push(`    ${entry.at} [${entry.source}] ${entry.message}`);
  }
  return lines.join("\n");
}
