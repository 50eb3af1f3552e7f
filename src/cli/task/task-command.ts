import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { CommandError, connectOnce, ExitCode } from "../../cli-kit/index.ts";
import { TASK_LIMITS } from "../../contracts/index.ts";
import type { Clock } from "../../runtime/index.ts";
import type { FlagValues } from "../../settings/index.ts";
import type { NatsEndpoint } from "../../settings-kit/index.ts";
import { cancelTask } from "./task-cancel.ts";
import { TASK_ACTION_FLAGS, TASK_CONNECTION_FLAGS } from "./task-flags.ts";
import { formatTaskJson, formatTaskTable, listTasks } from "./task-list.ts";
import { DEFAULT_TTL_MS, planRun, type RunInput } from "./task-plan.ts";
import { runTask } from "./task-run.ts";
import { machineTarget, type TaskTarget } from "./task-target.ts";
import { parseDuration } from "./task-units.ts";
import type { TaskOutputStreams } from "./task-view.ts";

export const TASK_USAGE = `usage: edge-agent task run (--machine ID | --tag k=v [--tag ...] | --all) [options] -- PROGRAM [ARGS...]
       edge-agent task run (--machine ID | --tag k=v ... | --all) [options] --script FILE [--interpreter sh|bash|powershell|cmd]
       edge-agent task cancel TASK_ID (--machine ID | --fleet) [--reason TEXT]
       edge-agent task list [--machine ID] [--since DURATION] [--json]
(edge-agent task --help lists the options)`;

export interface TaskCommandIo {
  readonly out: TaskOutputStreams;
  readonly clock: Clock;
  /** Ctrl-C or SIGTERM: stop following. */
  readonly stop: AbortSignal;
  /** Who runs the command (user@host), for a task's `requestedBy`. */
  readonly operator: string;
}

export interface TaskCommandInput {
  /** The words before `--`: the action and, for cancel, the task id. */
  readonly words: readonly string[];
  /** The words after `--`: the program and its arguments. */
  readonly argv: readonly string[];
  readonly flags: FlagValues;
}

const LIST_LIMIT = 200;
const DEFAULT_SINCE_MS = 24 * 3_600_000;
/** Following: a connection that was up comes back after a blip, tried every second. */
const RECONNECT_DELAY_MS = 1_000;

const text = (flags: FlagValues, name: string): string | undefined =>
  typeof flags[name] === "string" ? (flags[name] as string) : undefined;
const list = (flags: FlagValues, name: string): string[] => {
  const value = flags[name];
  return Array.isArray(value) ? value.map(String) : typeof value === "string" ? [value] : [];
};

/** A fresh task id: when it was made (UTC) and 8 random hex digits, e.g. `20261207-101500-3f9a1c2e`. */
export function newTaskId(nowMs: number): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${randomBytes(4).toString("hex")}`;
}

async function readSeed(path: string | undefined): Promise<Uint8Array | undefined> {
  if (path === undefined) return undefined;
  try {
    return new TextEncoder().encode((await readFile(path, "utf8")).trim());
  } catch (error) {
    throw new CommandError(`cannot read the signing seed ${path}: ${(error as Error).message}`, ExitCode.badSettings, {
      cause: error,
    });
  }
}

async function readScript(path: string): Promise<{ path: string; text: string }> {
  try {
    const bytes = await readFile(path);
    if (bytes.length > TASK_LIMITS.maxScriptBytes)
      throw new CommandError(
        `task run: --script ${path} is ${bytes.length} bytes, at most ${TASK_LIMITS.maxScriptBytes}`,
        ExitCode.badSettings,
      );
    return { path, text: bytes.toString("utf8") };
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(
      `task run: cannot read --script ${path}: ${(error as Error).message}`,
      ExitCode.badSettings,
      {
        cause: error,
      },
    );
  }
}

/** Flags that belong to another action, refused by name rather than ignored. */
function refuseForeignFlags(action: keyof typeof TASK_ACTION_FLAGS, flags: FlagValues): void {
  const allowed = new Set([...TASK_CONNECTION_FLAGS, ...TASK_ACTION_FLAGS[action]]);
  const foreign = Object.keys(flags).filter((name) => flags[name] !== undefined && !allowed.has(name));
  if (foreign.length > 0)
    throw new CommandError(
      `task ${action} takes no ${foreign.map((name) => `--${name}`).join(", ")} (edge-agent task --help says which action takes which)`,
      ExitCode.badSettings,
    );
}

/** `edge-agent task run|cancel|list`. Answers the exit code. */
export async function taskCommand(
  settings: () => NatsEndpoint,
  input: TaskCommandInput,
  io: TaskCommandIo,
): Promise<number> {
  const [action, ...rest] = input.words;
  const { flags } = input;
  if (action === "run") {
    refuseForeignFlags("run", flags);
    if (rest.length > 0)
      throw new CommandError(
        `task run: the program and its arguments go after --: edge-agent task run --machine m1 -- ${rest.join(" ")}`,
        ExitCode.badSettings,
      );
    const scriptPath = text(flags, "script");
    const runInput: RunInput = {
      ...optional("machine", text(flags, "machine")),
      tags: list(flags, "tag"),
      all: flags.all === true,
      ...optional("timeout", text(flags, "timeout")),
      ...optional("ttl", text(flags, "ttl")),
      ...optional("wait", text(flags, "wait")),
      ...optional("maxOutput", text(flags, "max-output")),
      env: list(flags, "env"),
      ...optional("workdir", text(flags, "workdir")),
      ...optional("taskId", text(flags, "task-id")),
      ...optional("requestedBy", text(flags, "requested-by")),
      ...optional("interpreter", text(flags, "interpreter")),
      argv: input.argv,
      ...(scriptPath !== undefined ? { script: await readScript(scriptPath) } : {}),
    };
    const plan = planRun(runInput, { taskId: newTaskId(io.clock.now()), requestedBy: io.operator });
    const signingSeed = await readSeed(text(flags, "signing-seed-file"));
    const follow = flags["no-follow"] !== true;
    return withConnection(settings, follow, (connection) =>
      runTask(connection, plan, {
        follow,
        json: flags.json === true,
        ...(signingSeed ? { signingSeed } : {}),
        eventId: randomUUID(),
        clock: io.clock,
        stop: io.stop,
        out: io.out,
      }),
    );
  }
  if (input.argv.length > 0)
    throw new CommandError(`task ${action ?? ""}: nothing goes after --`, ExitCode.badSettings);
  if (action === "cancel") {
    refuseForeignFlags("cancel", flags);
    const [taskId, ...extra] = rest;
    if (taskId === undefined || extra.length > 0)
      throw new CommandError(
        "task cancel takes one TASK_ID: edge-agent task cancel TASK_ID --machine ID (or --fleet)",
        ExitCode.badSettings,
      );
    const machine = text(flags, "machine");
    if ((machine === undefined) === (flags.fleet !== true))
      throw new CommandError(
        "task cancel: say where the task was sent: --machine ID (a machine's own task) or --fleet (a task sent with --tag or --all)",
        ExitCode.badSettings,
      );
    const target: TaskTarget = machine !== undefined ? machineTarget(machine) : { kind: "fleet", selector: undefined };
    const ttl = text(flags, "ttl");
    const signingSeed = await readSeed(text(flags, "signing-seed-file"));
    const reason = text(flags, "reason");
    return withConnection(settings, false, (connection) =>
      cancelTask(
        connection,
        {
          target,
          taskId,
          ...(reason !== undefined ? { reason } : {}),
          ttlMs: ttl === undefined ? DEFAULT_TTL_MS : parseDuration(ttl, "--ttl"),
          ...(signingSeed ? { signingSeed } : {}),
          eventId: randomUUID(),
          json: flags.json === true,
        },
        io.clock,
        io.out,
      ),
    );
  }
  if (action === "list") {
    refuseForeignFlags("list", flags);
    if (rest.length > 0)
      throw new CommandError(`task list takes no arguments, got ${rest.join(" ")}`, ExitCode.badSettings);
    const machine = text(flags, "machine");
    if (machine !== undefined) machineTarget(machine);
    const since = text(flags, "since");
    const sinceMs = io.clock.now() - (since === undefined ? DEFAULT_SINCE_MS : parseDuration(since, "--since"));
    const listing = await withConnection(settings, false, (connection) =>
      listTasks(connection, { machineId: machine ?? null, sinceMs, limit: LIST_LIMIT }),
    );
    const lines =
      flags.json === true ? formatTaskJson(listing) : formatTaskTable(listing, new Date(sinceMs).toISOString());
    for (const line of lines) io.out.stdout(`${line}\n`);
    return ExitCode.ok;
  }
  throw new CommandError(
    action === undefined ? TASK_USAGE : `unknown task action ${JSON.stringify(action)}\n${TASK_USAGE}`,
    ExitCode.badSettings,
  );
}

function optional<K extends string>(key: K, value: string | undefined): { [key in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [key in K]?: string };
}

/** Connects once everything was checked: a bad command line is refused before any setting is read. */
async function withConnection<T>(
  settings: () => NatsEndpoint,
  follows: boolean,
  work: (connection: Awaited<ReturnType<typeof connectOnce>>) => Promise<T>,
): Promise<T> {
  const connection = await connectOnce(
    settings(),
    "edge-agent-task",
    3_000,
    follows ? { reconnectDelayMs: RECONNECT_DELAY_MS } : {},
  );
  try {
    return await work(connection);
  } finally {
    await connection.close().catch(() => undefined);
  }
}
