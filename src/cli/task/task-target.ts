import {
  assertMachineId,
  COMMAND_STREAMS,
  fleetSubjects,
  machineSubjects,
  type TaskSelector,
} from "../../contracts/index.ts";

/** Who a task is for: one machine (its own subjects), or the fleet (every machine whose tags match). */
export type TaskTarget =
  | { readonly kind: "machine"; readonly machineId: string }
  | { readonly kind: "fleet"; readonly selector: TaskSelector | undefined };

export function machineTarget(machineId: string): TaskTarget {
  return { kind: "machine", machineId: assertMachineId(machineId) };
}

/** Where the task is published; its signature's scope is this subject. */
export function taskSubjectOf(target: TaskTarget): string {
  return target.kind === "machine" ? machineSubjects(target.machineId).task : fleetSubjects.task;
}

export function cancelSubjectOf(target: TaskTarget): string {
  return target.kind === "machine" ? machineSubjects(target.machineId).taskCancel : fleetSubjects.taskCancel;
}

/** The stream that stores the target's tasks and cancels. */
export function taskStreamOf(target: TaskTarget): string {
  return target.kind === "machine" ? COMMAND_STREAMS.tasks : COMMAND_STREAMS.fleetTasks;
}

/** `machine m1`, `every machine`, `machines with site=lab, role=db`. */
export function describeTarget(target: TaskTarget): string {
  if (target.kind === "machine") return `machine ${target.machineId}`;
  const tags = Object.entries(target.selector?.tags ?? {});
  return tags.length === 0
    ? "every machine"
    : `machines with ${tags.map(([key, value]) => `${key}=${value}`).join(", ")}`;
}
