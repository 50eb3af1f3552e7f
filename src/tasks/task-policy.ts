import { selectorMatches, type TaskCommand, type TaskInterpreter } from "../contracts/index.ts";

/** The interpreters of each OS: the only ones a script may name there. */
export function interpretersOf(platform: NodeJS.Platform): readonly TaskInterpreter[] {
  return platform === "win32" ? ["powershell", "cmd"] : ["sh", "bash"];
}

/** The machine's own rules for what a task may run (settings `tasks.*`, never remote). */
export interface TaskPolicy {
  readonly enabled: boolean;
  readonly allowArgv: boolean;
  readonly allowedInterpreters: readonly TaskInterpreter[];
}

/**
 * Why this machine's policy refuses `command`, naming the setting that decides, or null: tasks
 * off, a program with arguments where only scripts are allowed, an interpreter not allowed or not
 * of this OS.
 */
export function policyRefusal(command: TaskCommand, policy: TaskPolicy, platform: NodeJS.Platform): string | null {
  if (!policy.enabled) return "tasks are turned off on this machine (tasks.enabled is false)";
  if ("argv" in command.run) {
    return policy.allowArgv
      ? null
      : "a program with its arguments (run.argv) is not allowed on this machine (tasks.allowArgv is false); send a script";
  }
  const { interpreter } = command.run;
  const ours = interpretersOf(platform);
  if (!ours.includes(interpreter))
    return `interpreter ${interpreter} is not one of this machine's (${platform}: ${ours.join(", ")})`;
  if (!policy.allowedInterpreters.includes(interpreter))
    return `interpreter ${interpreter} is not allowed on this machine (tasks.allowedInterpreters: ${policy.allowedInterpreters.join(", ") || "none"})`;
  return null;
}

/**
 * Why a task may not run for want of an expiry, or because its expiry passed, or null. A task must
 * carry one (the message's `Nats-TTL`, or `expiresAt` beside its signature), so a task nobody took
 * in time can never run later. A signed `expiresAt` is checked by the trust gate already; an
 * unsigned one (tasks.allowUnsigned) is checked here.
 */
export function expiryRefusal(
  expiresAt: string | undefined,
  ttlExpiresAtMs: number | null,
  nowMs: number,
): string | null {
  if (expiresAt === undefined && ttlExpiresAtMs === null)
    return "a task must carry an expiry (a Nats-TTL header or an expiresAt signed with it): one without could run any time later";
  if (expiresAt !== undefined && Date.parse(expiresAt) <= nowMs)
    return `the task expired at ${expiresAt} before it could be taken`;
  return null;
}

/** What a task's selector makes of it here: run it, settle it without a word (not for this machine), or refuse it. */
export type SelectorVerdict =
  | { readonly kind: "run" }
  | { readonly kind: "not-selected" }
  | { readonly kind: "refuse"; readonly reason: string };

/**
 * A fleet-wide task runs where every tag of its selector has the given value (none: everywhere);
 * a machine's own task must carry no selector (it would suggest a choice that is not made).
 */
export function selectorVerdict(
  command: TaskCommand,
  fleetWide: boolean,
  tags: Readonly<Record<string, string>>,
): SelectorVerdict {
  if (!fleetWide)
    return command.selector === undefined
      ? { kind: "run" }
      : {
          kind: "refuse",
          reason:
            "a selector is for fleet-wide tasks (machine.all.fleet-task); on this machine's own subject it is refused",
        };
  return selectorMatches(command.selector, tags) ? { kind: "run" } : { kind: "not-selected" };
}
