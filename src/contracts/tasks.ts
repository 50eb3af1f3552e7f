import * as z from "zod";

/**
 * Remote tasks (docs/DESIGN.md, "Remote tasks"): a command or script the platform asks one machine,
 * or every machine whose tags match, to run; its output as numbered chunks while it runs, and its end
 * as one result. These schemas are the wire contract of both directions.
 */

/** Bounds of what a task may ask: every one is refused with its reason when passed, never cut. */
export const TASK_LIMITS = {
  /** A task id names a folder, a log field and the marker its processes carry. */
  maxTaskIdLength: 128,
  maxArgs: 256,
  /** The UTF-8 bytes of every argument together. */
  maxArgvBytes: 64 * 1024,
  maxEnvEntries: 64,
  /** The UTF-8 bytes of every name and value together. */
  maxEnvBytes: 32 * 1024,
  maxScriptBytes: 256 * 1024,
  maxTimeoutSeconds: 24 * 60 * 60,
  defaultMaxOutputBytes: 1024 * 1024,
  maxOutputBytes: 16 * 1024 * 1024,
  maxWorkingDirLength: 4096,
  maxRequestedByLength: 256,
  /** A chunk's text: a chunk is sent when this much is gathered, or sooner (see DESIGN). */
  maxChunkBytes: 16 * 1024,
  /** The end result's last lines of each stream: at most this many, and this many bytes in all. */
  lastLines: 20,
  lastLinesBytes: 4 * 1024,
} as const;

const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8");

/** Letters, digits, `_` and `-`: it becomes a folder name and an environment value. */
export const TaskId = z
  .string()
  .min(1)
  .max(TASK_LIMITS.maxTaskIdLength)
  .regex(/^[A-Za-z0-9_-]+$/, "a taskId is letters, digits, '_' and '-'");
export type TaskId = z.infer<typeof TaskId>;

/** Interpreters by OS: `sh`/`bash` on Linux and macOS, `powershell`/`cmd` on Windows. */
export const TaskInterpreter = z.enum(["sh", "bash", "powershell", "cmd"]);
export type TaskInterpreter = z.infer<typeof TaskInterpreter>;

const Argv = z
  .array(z.string())
  .min(1, "argv needs at least the program")
  .max(TASK_LIMITS.maxArgs, `at most ${TASK_LIMITS.maxArgs} arguments`)
  .superRefine((argv, context) => {
    const bytes = argv.reduce((sum, arg) => sum + utf8Bytes(arg), 0);
    if (bytes > TASK_LIMITS.maxArgvBytes)
      context.addIssue({ code: "custom", message: `argv is ${bytes} bytes, at most ${TASK_LIMITS.maxArgvBytes}` });
    if ((argv[0] ?? "").length === 0) context.addIssue({ code: "custom", message: "argv[0] (the program) is empty" });
    if (argv.some((arg) => arg.includes("\u0000")))
      context.addIssue({ code: "custom", message: "an argument contains a NUL byte" });
  });

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * A refused `run` says what is wrong with the form it has (`{argv}` or `{script}`), never only
 * "invalid input": a bound passed is named.
 */
function runProblem(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code !== "invalid_union") return undefined;
  const input = issue.input;
  const branch = isObject(input) ? ("argv" in input ? 0 : "script" in input ? 1 : -1) : -1;
  const problems = branch === -1 ? undefined : issue.errors[branch];
  if (!problems || problems.length === 0) return "must be {argv: [program, ...arguments]} or {script, interpreter}";
  return problems
    .map((problem) => `${problem.path.length > 0 ? `${problem.path.join(".")}: ` : ""}${problem.message}`)
    .join("; ");
}

/** What to run: a program and its arguments (no shell), or a script given to an interpreter. */
export const TaskRun = z.union(
  [
    z.object({ argv: Argv }).strict(),
    z
      .object({
        script: z
          .string()
          .min(1)
          .refine((script) => utf8Bytes(script) <= TASK_LIMITS.maxScriptBytes, {
            message: `a script is at most ${TASK_LIMITS.maxScriptBytes} bytes`,
          }),
        interpreter: TaskInterpreter,
      })
      .strict(),
  ],
  { error: runProblem },
);
export type TaskRun = z.infer<typeof TaskRun>;

/** Variables added to the agent's own environment for the task. `EDGE_` names are the agent's. */
const TaskEnv = z.record(z.string(), z.string()).superRefine((env, context) => {
  const entries = Object.entries(env);
  const fail = (message: string): void => context.addIssue({ code: "custom", message });
  if (entries.length > TASK_LIMITS.maxEnvEntries)
    return fail(`${entries.length} environment variables, at most ${TASK_LIMITS.maxEnvEntries}`);
  let bytes = 0;
  for (const [name, value] of entries) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      return fail(`environment variable name ${JSON.stringify(name.slice(0, 64))} is not [A-Za-z_][A-Za-z0-9_]*`);
    if (name.toUpperCase().startsWith("EDGE_"))
      return fail(`environment variable ${name}: names starting EDGE_ are the agent's own`);
    if (value.includes("\u0000")) return fail(`environment variable ${name} contains a NUL byte`);
    bytes += utf8Bytes(name) + utf8Bytes(value);
  }
  if (bytes > TASK_LIMITS.maxEnvBytes) fail(`the environment is ${bytes} bytes, at most ${TASK_LIMITS.maxEnvBytes}`);
});

/** Which machines of a fleet-wide task run it: every tag given must be set to exactly that value. */
export const TaskSelector = z
  .object({
    tags: z.record(z.string().min(1).max(128), z.string().max(256)).optional(),
  })
  .strict();
export type TaskSelector = z.infer<typeof TaskSelector>;

/**
 * A task (platform -> agent) on `machine.{id}.task` or, fleet-wide, `machine.all.fleet-task`. Signed
 * like every command (its claims beside these fields); it must also carry an expiry (`Nats-TTL` or
 * the signed `expiresAt`), checked by the agent, not by this schema.
 */
export const TaskCommand = z.object({
  taskId: TaskId,
  run: TaskRun,
  env: TaskEnv.optional(),
  /** Absolute; only under the agent's data dir or a folder `tasks.allowedWorkingDirs` names. */
  workingDir: z.string().min(1).max(TASK_LIMITS.maxWorkingDirLength).optional(),
  timeoutSeconds: z.number().int().min(1).max(TASK_LIMITS.maxTimeoutSeconds),
  maxOutputBytes: z.number().int().min(1).max(TASK_LIMITS.maxOutputBytes).optional(),
  /** Fleet-wide tasks only: which machines take it (none: every machine). Refused on a machine's own subject. */
  selector: TaskSelector.optional(),
  /** Who asked, for the record (an operator's name); not used to decide anything. */
  requestedBy: z.string().max(TASK_LIMITS.maxRequestedByLength).optional(),
});
export type TaskCommand = z.infer<typeof TaskCommand>;

/** Stop a task (platform -> agent), on `machine.{id}.task.cancel` or `machine.all.fleet-task.cancel`. */
export const TaskCancel = z.object({
  taskId: TaskId,
  reason: z.string().max(512).optional(),
});
export type TaskCancel = z.infer<typeof TaskCancel>;

export const TaskOutputStream = z.enum(["stdout", "stderr"]);
export type TaskOutputStream = z.infer<typeof TaskOutputStream>;

/**
 * Output while a task runs (agent -> platform, `machine.{id}.task.output`). `seq` counts from 0 per
 * task over both streams, so a reader sees a gap; `data` is UTF-8 text (invalid bytes replaced), never
 * split inside a character.
 */
export const TaskOutputChunk = z.object({
  taskId: TaskId,
  seq: z.number().int().nonnegative(),
  stream: TaskOutputStream,
  data: z.string(),
  at: z.iso.datetime({ offset: true }),
});
export type TaskOutputChunk = z.infer<typeof TaskOutputChunk>;

/**
 * SUCCEEDED: exit code 0. FAILED: another exit code, a signal, a program that could not start, or the
 * agent stopped or crashed while it ran (never run again). TIMED_OUT and CANCELLED: stopped, its whole
 * process tree. REJECTED: never started (signature, expiry, policy, a reused taskId, a malformed task).
 */
export const TaskStatus = z.enum(["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED"]);
export type TaskStatus = z.infer<typeof TaskStatus>;

const StreamCounts = z.object({ stdout: z.number().int().nonnegative(), stderr: z.number().int().nonnegative() });

/** A task's end (agent -> platform, `machine.{id}.task.result`): one per task and machine, exactly once. */
export const TaskResult = z.object({
  /** Null only when a malformed task named none. */
  taskId: TaskId.nullable(),
  status: TaskStatus,
  exitCode: z.number().int().nullable(),
  /** The signal that ended it (`SIGKILL`, ...), or null. */
  signal: z.string().nullable(),
  /** Why, for every status but SUCCEEDED (and FAILED by exit code, where it is null). */
  error: z.string().nullable(),
  startedAt: z.iso.datetime({ offset: true }).nullable(),
  finishedAt: z.iso.datetime({ offset: true }),
  durationMs: z.number().int().nonnegative().nullable(),
  /** Bytes the process wrote, per stream, whether kept or not. */
  bytesSeen: StreamCounts,
  /** Whether output beyond `maxOutputBytes` was dropped (counted, not sent). */
  truncated: z.boolean(),
  /** Chunks sent: a reader holding seq 0 to chunks - 1 has all the output that was kept. */
  chunks: z.number().int().nonnegative(),
  /** The last lines of each stream, within TASK_LIMITS. */
  lastLines: z.object({ stdout: z.array(z.string()), stderr: z.array(z.string()) }),
});
export type TaskResult = z.infer<typeof TaskResult>;

/** Whether a machine with `tags` takes a fleet-wide task with `selector` (no selector: every machine). */
export function selectorMatches(selector: TaskSelector | undefined, tags: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector?.tags ?? {}).every(([key, value]) => tags[key] === value);
}
