import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ExitCode } from "../../cli-kit/index.ts";
import { TASK_EVENT_STREAMS, type TaskResult } from "../../contracts/index.ts";
import { type Clock, timersOf } from "../../runtime/index.ts";
import { TaskFollower } from "./task-follower.ts";
import { FOLLOW_GRACE_MS, type RunPlan } from "./task-plan.ts";
import { sendCommand } from "./task-publish.ts";
import { streamHeads } from "./task-streams.ts";
import { describeTarget, taskStreamOf, taskSubjectOf } from "./task-target.ts";
import { type FollowEnd, HumanTaskView, JsonTaskView, type TaskOutputStreams, type TaskView } from "./task-view.ts";
import { type TaskSummary, TaskWatch, type WatchEvent } from "./task-watch.ts";

export interface RunOptions {
  readonly follow: boolean;
  readonly json: boolean;
  readonly signingSeed?: Uint8Array;
  /** The task message's event id (`Nats-Msg-Id`, `X-Event-ID`). */
  readonly eventId: string;
  readonly clock: Clock;
  /** Ctrl-C: stop following (the task goes on). */
  readonly stop: AbortSignal;
  readonly out: TaskOutputStreams;
}

/** How long a chunk past a hole waits for it, and an end for the chunks it counts. */
const HOLD_MS = 1_000;
const END_GRACE_MS = 2_000;
const TICK_MS = 100;

/** A task's exit code as `task run` on one machine passes it on: 0..255, never 0 for a failure. */
export function exitCodeOfResult(result: TaskResult): number {
  if (result.status === "SUCCEEDED") return ExitCode.ok;
  const code = result.exitCode;
  if (code !== null && code > 0 && code <= 255) return code;
  return ExitCode.failure;
}

/**
 * One machine: its task's exit code, else 124 (no end while following) or 130 (Ctrl-C). A fleet:
 * 0 only when every machine heard from ended SUCCEEDED, 124 when none ended.
 */
export function exitCodeOfRun(
  plan: Pick<RunPlan, "target">,
  summary: TaskSummary,
  end: FollowEnd,
  ended: TaskResult | null,
): number {
  if (plan.target.kind === "machine") {
    if (ended) return exitCodeOfResult(ended);
    return end === "interrupted" ? ExitCode.interrupted : ExitCode.noResult;
  }
  const endings = Object.values(summary.ends).reduce((total, count) => total + count, 0);
  if (endings === 0) return ExitCode.noResult;
  return endings === summary.ends.SUCCEEDED && summary.silent.length === 0 ? ExitCode.ok : ExitCode.failure;
}

/**
 * `task run`: reads the streams' heads, starts following the task's output and ends from there,
 * sends the task, and shows what comes until the machine's end (one machine), `--wait`, the
 * moment no machine could still end it (its ttl and timeout passed), or Ctrl-C.
 */
export async function runTask(connection: NatsConnection, plan: RunPlan, options: RunOptions): Promise<number> {
  const { clock, out } = options;
  const manager = await jetstreamManager(connection);
  const js = jetstream(connection);
  const commandStream = taskStreamOf(plan.target);
  const heads = await streamHeads(
    manager,
    options.follow ? [commandStream, TASK_EVENT_STREAMS.output, TASK_EVENT_STREAMS.results] : [commandStream],
  );
  const view: TaskView = options.json
    ? new JsonTaskView(out)
    : new HumanTaskView(out, { prefixMachines: plan.target.kind === "fleet" });
  const send = () =>
    sendCommand(
      js,
      {
        subject: taskSubjectOf(plan.target),
        stream: commandStream,
        body: plan.body,
        ttlMs: plan.ttlMs,
        eventId: options.eventId,
        ...(options.signingSeed ? { signingSeed: options.signingSeed } : {}),
      },
      clock,
    );
  if (!options.follow) {
    const sent = await send();
    view.sent(plan.body.taskId, sent, describeTarget(plan.target));
    if (!options.json) out.stdout(`${plan.body.taskId}\n`);
    return ExitCode.ok;
  }

  const onlyMachine = plan.target.kind === "machine" ? plan.target.machineId : null;
  const watch = new TaskWatch({ holdMs: HOLD_MS, endGraceMs: END_GRACE_MS });
  let ended: TaskResult | null = null;
  let finished: (end: FollowEnd) => void = () => undefined;
  const finishedFollowing = new Promise<FollowEnd>((resolve) => (finished = resolve));
  const show = (events: readonly WatchEvent[]): void => {
    for (const event of events) {
      view.show(event);
      if (event.kind === "end" && event.machineId === onlyMachine) {
        ended = event.result;
        finished("ended");
      }
    }
  };
  const follower = new TaskFollower(js, {
    taskId: plan.body.taskId,
    machineId: onlyMachine,
    afterOutputSequence: heads.get(TASK_EVENT_STREAMS.output)?.lastSequence ?? 0,
    afterResultSequence: heads.get(TASK_EVENT_STREAMS.results)?.lastSequence ?? 0,
    listener: {
      chunk: (machineId, chunk) => show(watch.chunk(machineId, chunk, clock.monotonicMs())),
      result: (machineId, result) => show(watch.result(machineId, result, clock.monotonicMs())),
    },
  });
  const startedMs = clock.monotonicMs();
  const timers = timersOf(clock);
  const followMs = plan.waitMs ?? plan.ttlMs + plan.body.timeoutSeconds * 1_000 + FOLLOW_GRACE_MS;
  const stopTicks = timers.every(TICK_MS, () => show(watch.tick(clock.monotonicMs())));
  const stopDeadline = timers.after(followMs, () => finished("deadline"));
  const onStop = (): void => finished("interrupted");
  options.stop.addEventListener("abort", onStop, { once: true });
  try {
    await follower.start();
    const sent = await send();
    view.sent(plan.body.taskId, sent, describeTarget(plan.target));
    if (options.stop.aborted) finished("interrupted");
    const end = await finishedFollowing;
    show(watch.flush(clock.monotonicMs()));
    const summary = watch.summary();
    view.finish(plan.body.taskId, summary, end, clock.monotonicMs() - startedMs);
    return exitCodeOfRun(plan, summary, end, ended);
  } finally {
    stopTicks();
    stopDeadline();
    options.stop.removeEventListener("abort", onStop);
    await follower.stop();
  }
}
