import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { CommandError, ExitCode } from "../../cli-kit/index.ts";
import { type TaskCancel, TaskCancel as TaskCancelSchema } from "../../contracts/index.ts";
import type { Clock } from "../../runtime/index.ts";
import { sendCommand } from "./task-publish.ts";
import { streamHeads } from "./task-streams.ts";
import { cancelSubjectOf, describeTarget, type TaskTarget, taskStreamOf } from "./task-target.ts";
import type { TaskOutputStreams } from "./task-view.ts";

export interface CancelRequest {
  readonly target: TaskTarget;
  readonly taskId: string;
  readonly reason?: string;
  readonly ttlMs: number;
  readonly signingSeed?: Uint8Array;
  readonly eventId: string;
  readonly json: boolean;
}

/**
 * `task cancel`: asks the machine (or every machine, for a fleet task) to stop the task, its whole
 * process tree; a task not started yet is settled CANCELLED when it comes. Its end says which.
 */
export async function cancelTask(
  connection: NatsConnection,
  request: CancelRequest,
  clock: Clock,
  out: TaskOutputStreams,
): Promise<number> {
  const parsed = TaskCancelSchema.safeParse({
    taskId: request.taskId,
    ...(request.reason !== undefined ? { reason: request.reason } : {}),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CommandError(
      `task cancel: ${issue?.path[0] === "reason" ? "--reason" : "the task id"}: ${issue?.message ?? "invalid"}`,
      ExitCode.badSettings,
    );
  }
  const body: TaskCancel = parsed.data;
  const stream = taskStreamOf(request.target);
  await streamHeads(await jetstreamManager(connection), [stream]);
  const sent = await sendCommand(
    jetstream(connection),
    {
      subject: cancelSubjectOf(request.target),
      stream,
      body,
      ttlMs: request.ttlMs,
      eventId: request.eventId,
      ...(request.signingSeed ? { signingSeed: request.signingSeed } : {}),
    },
    clock,
  );
  if (request.json) out.stdout(`${JSON.stringify({ type: "cancel-sent", taskId: body.taskId, ...sent })}\n`);
  else
    out.stdout(
      `cancel of task ${body.taskId} sent to ${describeTarget(request.target)} (${sent.stream} #${sent.sequence}, ${sent.signed ? "signed" : "unsigned"}); its end says CANCELLED (edge-agent task list)\n`,
    );
  return ExitCode.ok;
}
