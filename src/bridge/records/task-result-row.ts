import type { TaskResult, TaskResultRow } from "../../contracts/index.ts";

/** Flattens one task end into the columns of `machine-task-results` (see TaskResultRow). */
export function taskResultRowOf(
  result: TaskResult,
  identity: {
    readonly eventId: string;
    readonly machineId: string;
    readonly sequence: number | null;
    readonly timestamp: string;
    readonly causationId: string | null;
    readonly correlationId: string | null;
  },
): TaskResultRow {
  return {
    eventId: identity.eventId,
    machineId: identity.machineId,
    sequence: identity.sequence,
    timestamp: identity.timestamp,
    causationId: identity.causationId,
    correlationId: identity.correlationId,
    taskId: result.taskId,
    status: result.status,
    exitCode: result.exitCode,
    signal: result.signal,
    error: result.error,
    startedAt: result.startedAt,
    startedAtMs: result.startedAt === null ? null : Date.parse(result.startedAt),
    finishedAt: result.finishedAt,
    finishedAtMs: Date.parse(result.finishedAt),
    durationMs: result.durationMs,
    stdoutBytes: result.bytesSeen.stdout,
    stderrBytes: result.bytesSeen.stderr,
    truncated: result.truncated,
    chunks: result.chunks,
    lastStdout: result.lastLines.stdout.join("\n"),
    lastStderr: result.lastLines.stderr.join("\n"),
  };
}
