import type { TelemetryRow, TelemetrySample } from "../../contracts/index.ts";

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);

/** Flattens one sample into the columns of `machine-telemetry` (see TelemetryRow). */
export function telemetryRowOf(
  sample: TelemetrySample,
  identity: { eventId: string; machineId: string; sequence: number | null },
): TelemetryRow {
  const { memory, load, cpu } = sample;
  const filesystemTotalBytes = sum(sample.filesystems.map((filesystem) => filesystem.totalBytes));
  const usedPercents = sample.filesystems
    .filter((filesystem) => filesystem.totalBytes > 0)
    .map((filesystem) => (100 * filesystem.usedBytes) / filesystem.totalBytes);
  return {
    eventId: identity.eventId,
    machineId: identity.machineId,
    sequence: identity.sequence,
    timestamp: sample.timestamp,
    timestampMs: Date.parse(sample.timestamp),
    intervalSeconds: sample.intervalSeconds,
    cpuTotalPercent: cpu?.totalPercent ?? null,
    cpuCores: cpu ? cpu.perCorePercent.length : null,
    load1: load?.one ?? null,
    load5: load?.five ?? null,
    load15: load?.fifteen ?? null,
    memoryTotalBytes: memory?.totalBytes ?? null,
    memoryUsedBytes: memory?.usedBytes ?? null,
    memoryAvailableBytes: memory?.availableBytes ?? null,
    memoryUsedPercent: memory && memory.totalBytes > 0 ? (100 * memory.usedBytes) / memory.totalBytes : null,
    swapTotalBytes: memory?.swapTotalBytes ?? null,
    swapUsedBytes: memory?.swapUsedBytes ?? null,
    filesystemTotalBytes,
    filesystemUsedBytes: sum(sample.filesystems.map((filesystem) => filesystem.usedBytes)),
    filesystemMaxUsedPercent: usedPercents.length > 0 ? Math.max(...usedPercents) : null,
    networkRxBytesPerSecond: sum(sample.network.map((nic) => nic.rxBytesPerSecond)),
    networkTxBytesPerSecond: sum(sample.network.map((nic) => nic.txBytesPerSecond)),
    networkErrorsPerSecond: sum(sample.network.map((nic) => nic.rxErrorsPerSecond + nic.txErrorsPerSecond)),
    diskReadBytesPerSecond: sum(sample.disks.map((disk) => disk.readBytesPerSecond)),
    diskWriteBytesPerSecond: sum(sample.disks.map((disk) => disk.writeBytesPerSecond)),
    uptimeSeconds: sample.uptimeSeconds,
    processCount: sample.processCount,
    agentRssBytes: sample.agent.rssBytes,
    agentCpuPercent: sample.agent.cpuPercent,
    outboxPendingCount: sample.outbox?.pendingCount ?? null,
    outboxOldestPendingAgeMs: sample.outbox?.oldestPendingAgeMs ?? null,
    tagKeyValues: sample.tagKeyValues,
    collectorErrors: sample.errors.length,
  };
}
