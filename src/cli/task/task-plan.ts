import { CommandError, ExitCode } from "../../cli-kit/index.ts";
import { TASK_LIMITS, TaskCommand, TaskInterpreter, TaskRun, type TaskSelector } from "../../contracts/index.ts";
import { machineTarget, type TaskTarget } from "./task-target.ts";
import { parseByteCount, parseDuration } from "./task-units.ts";

/** `task run`'s options as given on the command line (flags already split into these). */
export interface RunInput {
  readonly machine?: string;
  readonly tags: readonly string[];
  readonly all: boolean;
  readonly timeout?: string;
  readonly ttl?: string;
  readonly wait?: string;
  readonly maxOutput?: string;
  readonly env: readonly string[];
  readonly workdir?: string;
  readonly taskId?: string;
  readonly requestedBy?: string;
  readonly interpreter?: string;
  /** The words after `--`: the program and its arguments. */
  readonly argv: readonly string[];
  /** `--script FILE`, read. */
  readonly script?: { readonly path: string; readonly text: string };
}

export interface RunPlan {
  readonly target: TaskTarget;
  readonly body: TaskCommand;
  /** How long the task may wait for its machine (`Nats-TTL`, and the signed `expiresAt`). */
  readonly ttlMs: number;
  /** How long to follow; null: until the task can no longer end (ttl + timeout + a grace). */
  readonly waitMs: number | null;
}

export const DEFAULT_TIMEOUT_SECONDS = 300;
export const DEFAULT_TTL_MS = 3_600_000;
/** After the last moment a machine could still start the task and run it to its timeout: its result's way back. */
export const FOLLOW_GRACE_MS = 60_000;

const usage = (message: string): CommandError => new CommandError(`task run: ${message}`, ExitCode.badSettings);

/** `k=v` pairs of a repeatable flag; the value is taken as typed (it may hold `=` and spaces). */
export function keyValuePairs(pairs: readonly string[], flag: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs) {
    const separator = pair.indexOf("=");
    if (separator <= 0) throw usage(`${flag} ${JSON.stringify(pair)} must be key=value`);
    const key = pair.slice(0, separator);
    if (key in result) throw usage(`${flag} ${key} is given twice`);
    result[key] = pair.slice(separator + 1);
  }
  return result;
}

/** Exactly one of --machine, --tag (repeatable) and --all. */
export function targetOf(input: Pick<RunInput, "machine" | "tags" | "all">): TaskTarget {
  const given = [input.machine !== undefined, input.tags.length > 0, input.all].filter(Boolean).length;
  if (given !== 1)
    throw usage(
      given === 0
        ? "say which machines: --machine ID, --tag k=v (repeatable: every tag must match), or --all"
        : "--machine, --tag and --all exclude each other: give one",
    );
  if (input.machine !== undefined) return machineTarget(input.machine);
  if (input.all) return { kind: "fleet", selector: undefined };
  const selector: TaskSelector = { tags: keyValuePairs(input.tags, "--tag") };
  return { kind: "fleet", selector };
}

/**
 * The interpreter of a script: the one asked, else the script's `#!` line (`bash`, `sh`, `pwsh` or
 * `powershell`), else its extension (`.ps1` PowerShell, `.cmd`/`.bat` cmd), else `sh`.
 */
export function interpreterOf(script: { path: string; text: string }, asked: string | undefined): TaskInterpreter {
  if (asked !== undefined) {
    const parsed = TaskInterpreter.safeParse(asked);
    if (!parsed.success)
      throw usage(`--interpreter ${JSON.stringify(asked)} is not one of ${TaskInterpreter.options.join(", ")}`);
    return parsed.data;
  }
  const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(script.text);
  if (shebang) {
    const program = (shebang[1] as string).endsWith("/env") ? shebang[2] : shebang[1];
    const name = program?.split("/").pop() ?? "";
    if (name === "bash") return "bash";
    if (name === "sh" || name === "dash") return "sh";
    if (name === "pwsh" || name === "powershell") return "powershell";
  }
  const extension = /\.([A-Za-z0-9]+)$/.exec(script.path)?.[1]?.toLowerCase();
  if (extension === "ps1") return "powershell";
  if (extension === "cmd" || extension === "bat") return "cmd";
  if (extension === "bash") return "bash";
  return "sh";
}

/**
 * Turns `task run`'s options into the TaskCommand to send, refusing (exit 2, before anything is
 * sent) whatever every agent would refuse, with the field and the bound.
 */
export function planRun(input: RunInput, defaults: { readonly taskId: string; readonly requestedBy: string }): RunPlan {
  const target = targetOf(input);
  if (input.script && input.argv.length > 0) throw usage("give either --script FILE or a program after --, not both");
  if (!input.script && input.argv.length === 0)
    throw usage(
      "nothing to run: put the program and its arguments after -- (task run --machine m1 -- uptime), or give --script FILE",
    );
  if (!input.script && input.interpreter !== undefined) throw usage("--interpreter goes with --script");
  const timeoutMs =
    input.timeout === undefined ? DEFAULT_TIMEOUT_SECONDS * 1_000 : parseDuration(input.timeout, "--timeout");
  const timeoutSeconds = Math.ceil(timeoutMs / 1_000);
  if (timeoutSeconds > TASK_LIMITS.maxTimeoutSeconds)
    throw usage(`--timeout is at most ${TASK_LIMITS.maxTimeoutSeconds / 3_600} h (${TASK_LIMITS.maxTimeoutSeconds} s)`);
  const ttlMs = input.ttl === undefined ? DEFAULT_TTL_MS : parseDuration(input.ttl, "--ttl");
  const waitMs = input.wait === undefined ? null : parseDuration(input.wait, "--wait");
  const env = keyValuePairs(input.env, "--env");
  if (input.workdir !== undefined && !ABSOLUTE_PATH.test(input.workdir))
    throw usage(`--workdir ${JSON.stringify(input.workdir)} must be an absolute path on the machine`);
  // Each form of run on its own schema: a union's refusal would not say which bound was passed.
  const run = input.script
    ? TaskRun.options[1].safeParse({
        script: input.script.text,
        interpreter: interpreterOf(input.script, input.interpreter),
      })
    : TaskRun.options[0].safeParse({ argv: [...input.argv] });
  if (!run.success) throw refusal(["run", input.script ? "script" : "argv"], run.error.issues[0]?.message);
  const candidate = {
    taskId: input.taskId ?? defaults.taskId,
    run: run.data,
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(input.workdir !== undefined ? { workingDir: input.workdir } : {}),
    timeoutSeconds,
    ...(input.maxOutput !== undefined ? { maxOutputBytes: parseByteCount(input.maxOutput, "--max-output") } : {}),
    ...(target.kind === "fleet" && target.selector ? { selector: target.selector } : {}),
    requestedBy: input.requestedBy ?? defaults.requestedBy,
  };
  const parsed = TaskCommand.safeParse(candidate);
  if (!parsed.success) throw refusal(parsed.error.issues[0]?.path ?? [], parsed.error.issues[0]?.message);
  return { target, body: parsed.data, ttlMs, waitMs };
}

/** Linux and macOS (`/...`) or Windows (`C:\...`, `\\server\share`): the agent's OS is not known here. */
const ABSOLUTE_PATH = /^(\/|[A-Za-z]:[\\/]|\\\\)/;

function refusal(path: readonly PropertyKey[], message: string | undefined): CommandError {
  const where = path.length > 0 ? `${flagOfField(path)}: ` : "";
  return usage(`${where}${message ?? "not a valid task"}`);
}

/** The option an operator gave for a field of the task, to name it in a refusal. */
function flagOfField(path: readonly PropertyKey[]): string {
  const [field, sub] = path.map(String);
  if (field === "taskId") return "--task-id";
  if (field === "run") return sub === "argv" ? "the program after --" : sub === "script" ? "--script" : "--interpreter";
  if (field === "env") return "--env";
  if (field === "workingDir") return "--workdir";
  if (field === "maxOutputBytes") return "--max-output";
  if (field === "timeoutSeconds") return "--timeout";
  if (field === "selector") return "--tag";
  if (field === "requestedBy") return "--requested-by";
  return path.join(".");
}
