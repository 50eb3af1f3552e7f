import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  COMMAND_STREAMS,
  EventHeader,
  fleetSubjects,
  machineIdOfSubject,
  machineSubjects,
  TASK_EVENT_STREAMS,
  TaskCancel,
  TaskCommand,
  type TaskResult,
  TaskResult as TaskResultSchema,
  type TaskRun,
  type TaskSelector,
  type TaskStatus,
} from "../../contracts/index.ts";
import { readWindow, type WindowMessage } from "./stream-window.ts";
import { attributedMachine } from "./task-follower.ts";
import { streamHeads } from "./task-streams.ts";
import { describeEnd } from "./task-view.ts";

/** One machine's end of a listed task. */
export interface ListedEnd {
  readonly machineId: string;
  readonly result: TaskResult;
}

/** One task as `task list` shows it. */
export interface ListedTask {
  readonly taskId: string;
  readonly sentAt: string;
  readonly stream: string;
  readonly sequence: number;
  /** The machine of a machine's own task; null for a fleet task. */
  readonly machineId: string | null;
  readonly selector: TaskSelector | null;
  readonly run: TaskRun;
  readonly timeoutSeconds: number;
  readonly requestedBy: string | null;
  readonly signed: boolean;
  readonly cancelRequested: boolean;
  readonly ends: ListedEnd[];
}

export interface ListOptions {
  /** Only this machine's tasks, and the fleet tasks it ended. */
  readonly machineId: string | null;
  readonly sinceMs: number;
  /** At most this many tasks, the newest. */
  readonly limit: number;
}

export interface TaskListing {
  readonly tasks: ListedTask[];
  /** Tasks sent in the window but not listed (over the limit). */
  readonly olderNotShown: number;
  /** Stored messages on task subjects that are not a valid task, cancel or end. */
  readonly unreadable: number;
}

/**
 * The tasks sent since `sinceMs` (from TASKS and FLEET_TASKS), with each machine's end (from
 * TASK_RESULTS), joined by task id: a machine's end goes to its own task of that id, else to the
 * fleet task of that id.
 */
export async function listTasks(connection: NatsConnection, options: ListOptions): Promise<TaskListing> {
  const manager = await jetstreamManager(connection);
  const js = jetstream(connection);
  await streamHeads(manager, [COMMAND_STREAMS.tasks, COMMAND_STREAMS.fleetTasks, TASK_EVENT_STREAMS.results]);
  const own = options.machineId === null ? null : machineSubjects(options.machineId);
  const window = (
    stream: string,
    subjects: string[],
    keepNewest: number,
    select?: (message: WindowMessage) => boolean,
  ) =>
    readWindow(manager, js, {
      stream,
      subjects,
      sinceMs: options.sinceMs,
      keepNewest,
      headerName: EventHeader.machineId,
      ...(select ? { select } : {}),
    });
  const machineTasks = await window(
    COMMAND_STREAMS.tasks,
    own ? [own.task, own.taskCancel] : ["machine.*.task", "machine.*.task.cancel"],
    options.limit * 2,
  );
  const fleetTasks = await window(
    COMMAND_STREAMS.fleetTasks,
    [fleetSubjects.task, fleetSubjects.taskCancel],
    options.limit * 2,
  );

  let unreadable = 0;
  const tasks = new Map<string, ListedTask>();
  const cancels: Array<{ key: string }> = [];
  for (const message of [...machineTasks.messages, ...fleetTasks.messages]) {
    const fleet = message.subject.startsWith("machine.all.");
    const machineId = fleet ? null : machineIdOfSubject(message.subject);
    if (message.subject.endsWith(".cancel")) {
      const cancel = TaskCancel.safeParse(message.body);
      if (cancel.success) cancels.push({ key: taskKey(cancel.data.taskId, machineId) });
      else unreadable += 1;
      continue;
    }
    const task = TaskCommand.safeParse(message.body);
    if (!task.success) {
      unreadable += 1;
      continue;
    }
    const signed = typeof (message.body as { signature?: unknown }).signature === "string";
    tasks.set(taskKey(task.data.taskId, machineId), {
      taskId: task.data.taskId,
      sentAt: new Date(message.storedAtMs).toISOString(),
      stream: fleet ? COMMAND_STREAMS.fleetTasks : COMMAND_STREAMS.tasks,
      sequence: message.sequence,
      machineId,
      selector: task.data.selector ?? null,
      run: task.data.run,
      timeoutSeconds: task.data.timeoutSeconds,
      requestedBy: task.data.requestedBy ?? null,
      signed,
      cancelRequested: false,
      ends: [],
    });
  }
  for (const { key } of cancels) {
    const task = tasks.get(key);
    if (task) tasks.set(key, { ...task, cancelRequested: true });
  }
  // Only the ends of the tasks listed are kept: a fleet's window may hold far more.
  const listedIds = new Set([...tasks.values()].map((task) => task.taskId));
  const results = await window(
    TASK_EVENT_STREAMS.results,
    [own?.taskResult ?? "machine.*.task.result"],
    Number.MAX_SAFE_INTEGER,
    (message) => {
      const taskId = (message.body as { taskId?: unknown } | undefined)?.taskId;
      return typeof taskId !== "string" || listedIds.has(taskId);
    },
  );
  unreadable += joinEnds(tasks, results.messages);
  const ordered = [...tasks.values()]
    .filter((task) => options.machineId === null || task.machineId !== null || task.ends.length > 0)
    .sort((a, b) => a.sentAt.localeCompare(b.sentAt) || a.sequence - b.sequence);
  return {
    tasks: ordered.slice(-options.limit),
    olderNotShown: Math.max(0, ordered.length - options.limit) + machineTasks.dropped + fleetTasks.dropped,
    unreadable,
  };
}

const taskKey = (taskId: string, machineId: string | null): string => `${machineId ?? "*"}/${taskId}`;

/** Puts each end with its task; answers how many stored ends were not a machine's valid end. */
function joinEnds(tasks: Map<string, ListedTask>, results: readonly WindowMessage[]): number {
  let unreadable = 0;
  for (const message of results) {
    const machineId = attributedMachine(message.subject, message.machineIdHeaders);
    const result = TaskResultSchema.safeParse(message.body);
    if (machineId === null || !result.success) {
      unreadable += 1;
      continue;
    }
    if (result.data.taskId === null) continue;
    const task = tasks.get(taskKey(result.data.taskId, machineId)) ?? tasks.get(taskKey(result.data.taskId, null));
    if (task && !task.ends.some((end) => end.machineId === machineId))
      task.ends.push({ machineId, result: result.data });
  }
  return unreadable;
}

const STATUS_ORDER: readonly TaskStatus[] = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED"];

/** What was run, on one short line: the argv joined, or the script's interpreter and size. */
export function describeRun(run: TaskRun): string {
  if ("argv" in run) {
    const line = run.argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(" ");
    return line.length > 60 ? `${line.slice(0, 59)}…` : line;
  }
  const lines = run.script.split("\n").filter((line) => line.trim() !== "").length;
  return `${run.interpreter} script, ${lines} line${lines === 1 ? "" : "s"}`;
}

/** The end column: one machine's end, or a fleet's counts. */
export function describeEnds(task: ListedTask): string {
  const cancel = task.cancelRequested ? " (cancel sent)" : "";
  if (task.ends.length === 0) return `no end yet${cancel}`;
  if (task.machineId !== null || task.ends.length === 1) {
    const end = task.ends[0] as ListedEnd;
    const machine = task.machineId === null ? `${end.machineId}: ` : "";
    return `${machine}${describeEnd(end.result, 0)}${cancel}`;
  }
  const counts = STATUS_ORDER.map(
    (status) => [status, task.ends.filter((end) => end.result.status === status).length] as const,
  )
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${status}`);
  const failed = task.ends.filter((end) => end.result.status !== "SUCCEEDED").map((end) => end.machineId);
  const which =
    failed.length > 0 ? ` (not SUCCEEDED: ${failed.slice(0, 5).join(", ")}${failed.length > 5 ? ", ..." : ""})` : "";
  return `${task.ends.length} machines: ${counts.join(", ")}${which}${cancel}`;
}

const targetOf = (task: ListedTask): string => {
  if (task.machineId !== null) return task.machineId;
  const tags = Object.entries(task.selector?.tags ?? {});
  return tags.length === 0 ? "all" : tags.map(([key, value]) => `${key}=${value}`).join(",");
};

/** The listing as a table for people, oldest first. */
export function formatTaskTable(listing: TaskListing, since: string): string[] {
  if (listing.tasks.length === 0) return [`no task sent since ${since}`];
  const rows = listing.tasks.map((task) => [
    task.sentAt.slice(0, 19).replace("T", " "),
    task.taskId,
    targetOf(task),
    describeRun(task.run),
    describeEnds(task),
  ]);
  const header = ["SENT (UTC)", "TASK", "TARGET", "RUN", "END"];
  const widths = header.map((title, column) =>
    Math.min(60, Math.max(title.length, ...rows.map((row) => (row[column] as string).length))),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] as number)))
      .join("  ")
      .trimEnd();
  const notes = [
    listing.olderNotShown > 0 ? `${listing.olderNotShown} older tasks in the window not shown` : null,
    listing.unreadable > 0 ? `${listing.unreadable} stored messages were not a valid task, cancel or end` : null,
  ].filter((note): note is string => note !== null);
  return [line(header), ...rows.map(line), ...notes.map((note) => `(${note})`)];
}

/** One JSON object a line per task, oldest first. */
export function formatTaskJson(listing: TaskListing): string[] {
  return listing.tasks.map((task) =>
    JSON.stringify({
      ...task,
      ends: task.ends.map((end) => ({ machineId: end.machineId, ...end.result })),
    }),
  );
}
