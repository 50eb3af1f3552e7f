import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { NoRespondersError } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import { CommandError, connectOnce, processAlive } from "../../cli-kit/index.ts";
import { BRIDGE_STATUS_FILE } from "../index.ts";
import { BRIDGE_SERVICE_NAME, type BridgeStatus } from "../service/index.ts";
import type { BridgeSettings } from "../settings/index.ts";

export interface BridgeStatusReport {
  /** live: answered over NATS now; file: this machine's instance's last status file; none: neither. */
  readonly source: "live" | "file" | "none";
  /** Whether an instance runs: one answered, or the status file's writer is still alive. */
  readonly running: boolean;
  /** With the file of an instance that no longer runs: when it last wrote it. */
  readonly stoppedSince: string | null;
  readonly instances: readonly BridgeStatus[];
  readonly problem: string | null;
}

/** Why no instance answered, in an operator's words: decided on the errors' classes, never their text. */
function whyNoAnswer(error: unknown, settings: BridgeSettings): string {
  const servers = settings.natsServers.join(", ");
  if (error instanceof NoRespondersError || (error instanceof Error && error.cause instanceof NoRespondersError))
    return `no edge-bridge instance answered on ${servers}`;
  if (error instanceof CommandError) return error.message;
  return `asking the instances on ${servers} failed: ${error instanceof Error ? error.message : String(error)}`;
}

/** Every instance of the group, asked over `$SRV.STATS.edge-bridge`; else the local status file. */
export async function fetchBridgeStatus(settings: BridgeSettings): Promise<BridgeStatusReport> {
  let problem: string;
  try {
    const connection = await connectOnce(settings, `edge-bridge-status-${process.pid}`, 2_000);
    try {
      const instances: BridgeStatus[] = [];
      const replies = await new Svcm(connection)
        .client({ strategy: "timer", maxWait: 1_500 })
        .stats(BRIDGE_SERVICE_NAME);
      for await (const reply of replies) {
        const data = reply.endpoints?.[0]?.data as BridgeStatus | undefined;
        if (data && data.group === settings.group) instances.push(data);
      }
      if (instances.length > 0)
        return {
          source: "live",
          running: true,
          stoppedSince: null,
          instances: instances.sort((a, b) => a.instanceId.localeCompare(b.instanceId)),
          problem: null,
        };
      problem = `no edge-bridge instance of group ${settings.group} answered on ${settings.natsServers.join(", ")}`;
    } finally {
      await connection.close();
    }
  } catch (error) {
    problem = whyNoAnswer(error, settings);
  }
  const file = join(settings.dataDir, BRIDGE_STATUS_FILE);
  let status: BridgeStatus;
  let writtenMs: number;
  try {
    const [text, info] = await Promise.all([readFile(file, "utf8"), stat(file)]);
    status = JSON.parse(text) as BridgeStatus;
    writtenMs = info.mtimeMs;
  } catch {
    return { source: "none", running: false, stoppedSince: null, instances: [], problem };
  }
  const ageSeconds = Math.round((Date.now() - writtenMs) / 1000);
  const running = Number.isSafeInteger(status.pid) && status.pid > 0 && processAlive(status.pid);
  return {
    source: "file",
    running,
    stoppedSince: running ? null : new Date(writtenMs).toISOString(),
    instances: [status],
    problem: running
      ? `${problem}; the instance on this machine (pid ${status.pid}) runs but did not answer: showing ${file}, written ${ageSeconds} s ago`
      : `${problem}; no instance runs on this machine: showing what the last one left in ${file}`,
  };
}

export function formatBridgeStatus(report: BridgeStatusReport): string {
  const lines: string[] = [];
  if (report.problem) lines.push(`note: ${report.problem}`);
  const stopped = report.source === "file" && !report.running;
  for (const instance of report.instances) {
    if (stopped) {
      lines.push(
        `instance ${instance.instanceId} (group ${instance.group}, version ${instance.version}) not running since ${report.stoppedSince}`,
      );
      lines.push(
        `  last run: pid ${instance.pid}, started ${instance.startedAt}; its NATS link was ${instance.nats.connected ? `up to ${instance.nats.server ?? "?"}` : "down"}; kafka: ${instance.kafkaBrokers.join(", ")}`,
      );
      if (instance.fatal) lines.push(`  it stopped because: ${instance.fatal}`);
      continue;
    }
    lines.push(
      `instance ${instance.instanceId} (group ${instance.group}, version ${instance.version}, pid ${instance.pid}, since ${instance.startedAt})`,
    );
    lines.push(
      `  nats: ${instance.nats.connected ? `connected to ${instance.nats.server ?? "?"}` : "not connected"}; kafka: ${instance.kafkaBrokers.join(", ")}; instances in group: ${instance.liveInstances}`,
    );
    lines.push(
      `  memory: ${Math.round(instance.memory.rssBytes / 1048576)} MB resident, heap ${Math.round(instance.memory.heapUsedBytes / 1048576)} MB, buffers ${Math.round(instance.memory.arrayBuffersBytes / 1048576)} MB`,
    );
    // A status file left by an older version has no `kafka`.
    if (instance.kafka?.problem) lines.push(`  KAFKA: ${instance.kafka.problem}`);
    if (instance.fatal) lines.push(`  STOPPED: ${instance.fatal}`);
    for (const shard of instance.shards) {
      lines.push(
        `  shard ${shard.shard}: ${shard.state}; ${shard.produced} produced, ${shard.deadLetters} dead letters, ${shard.duplicatesDropped} duplicates dropped; ${shard.transactionsCommitted} transactions committed, ${shard.transactionsAborted} aborted; last commit ${shard.lastCommitAt ?? "never"}`,
      );
      if (shard.lastError) lines.push(`    last error: ${shard.lastError}`);
      for (const stream of shard.streams) {
        lines.push(
          `    ${stream.stream}: at ${stream.committedSequence} of ${stream.lastSequence ?? "?"} (lag ${stream.lag ?? "?"}), pending ${stream.pending ?? "?"}, ack pending ${stream.ackPending ?? "?"}, redelivered ${stream.redelivered ?? "?"}`,
        );
      }
    }
  }
  if (report.instances.length === 0) lines.push("no edge-bridge instance found");
  return lines.join("\n");
}
