import { EventType, TaskId, type TaskResult, type TaskStatus } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/index.ts";

/** The end of a task that never started (refused, cancelled first, cut short before it ran): no output. */
export function endWithoutRun(
  taskId: string | null,
  status: Extract<TaskStatus, "REJECTED" | "CANCELLED" | "FAILED">,
  error: string,
  finishedAt: string,
): TaskResult {
  return {
    taskId,
    status,
    exitCode: null,
    signal: null,
    error,
    startedAt: null,
    finishedAt,
    durationMs: null,
    bytesSeen: { stdout: 0, stderr: 0 },
    truncated: false,
    chunks: 0,
    lastLines: { stdout: [], stderr: [] },
  };
}

/** The task id of a body that may be malformed: null when it names none that is valid. */
export function taskIdOf(raw: unknown): string | null {
  if (raw === null || typeof raw !== "object") return null;
  const parsed = TaskId.safeParse((raw as Record<string, unknown>).taskId);
  return parsed.success ? parsed.data : null;
}

/**
 * A task's result as an event: caused by the task command and in its flow (causation and
 * correlation are the command's event id); `eventId` fixed when the task's record names it.
 */
export function taskResultEvent(
  body: TaskResult,
  ids: { readonly causationId: string; readonly eventId?: string },
): OutgoingEvent {
  return {
    type: EventType.taskResult,
    body,
    correlationId: ids.causationId,
    causationId: ids.causationId,
    ...(ids.eventId === undefined ? {} : { eventId: ids.eventId }),
  };
}
