import type { TaskOutputChunk, TaskResult, TaskStatus } from "../contracts/index.ts";
import { type Cancel, type Clock, type Logger, sleepOn, timersOf } from "../runtime/index.ts";
import { startTaskProcess, stopProcessTree, type TaskChild, type TaskProcessSpec } from "./process-tree.ts";
import { TaskOutput } from "./task-output.ts";
import { endWithoutRun } from "./task-results.ts";

export interface TaskRunOptions {
  readonly taskId: string;
  /** What to start (its folder and script written by then); a throw ends the task FAILED, unstarted. */
  readonly prepare: () => Promise<TaskProcessSpec>;
  /** The `EDGE_TASK_ID` value its processes carry (in the prepared environment). */
  readonly marker: string;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sendChunk: (chunk: TaskOutputChunk) => Promise<unknown>;
  /** Notes (durably) that processes carrying the marker may run, and, with null, that none does any more. */
  readonly noteMarker: (marker: string | null) => void;
}

/** Why a task ended before its process did. */
type Interruption =
  | { readonly kind: "timeout" }
  | { readonly kind: "cancel"; readonly reason: string }
  | { readonly kind: "agent-stop" };

type Ending =
  | { readonly kind: "exit"; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | Interruption;

export const TASK_GRACE_MS = 5_000;
export const AGENT_STOP_GRACE_MS = 2_000;
/** After its tree is gone: how long the process's pipes may take to give their last bytes. */
const PIPES_CLOSE_MS = 1_000;

/**
 * One task's process, from its start to its result: its output read as it comes (task-output.ts),
 * ended by its own exit, its timeout, a cancel or the agent stopping. Whatever ends it, its whole
 * tree is stopped before the result is made (a daemon it left behind included), and the marker
 * note is cleared only then.
 */
export class TaskRun {
  readonly #options: TaskRunOptions;
  #child: TaskChild | null = null;
  #interrupt: ((interruption: Interruption) => void) | null = null;
  #pending: Interruption | null = null;
  #startedAtMs: number | null = null;

  constructor(options: TaskRunOptions) {
    this.#options = options;
  }

  /** The process id while it runs (null before it started). */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** When it started (epoch ms), null before. */
  get startedAtMs(): number | null {
    return this.#startedAtMs;
  }

  /** Ends it: a cancel. The first interruption wins; one before it started keeps it from starting. */
  cancel(reason: string): void {
    this.#end({ kind: "cancel", reason });
  }

  /** Ends it because the agent stops (with the shorter grace). */
  stopForShutdown(): void {
    this.#end({ kind: "agent-stop" });
  }

  async run(): Promise<TaskResult> {
    const { clock, logger, taskId } = this.#options;
    const iso = (ms: number): string => new Date(ms).toISOString();
    const early = this.#pending;
    if (early) return this.#endBeforeStart(early, iso(clock.now()));
    let spec: TaskProcessSpec;
    try {
      spec = await this.#options.prepare();
    } catch (error) {
      logger.error({ err: error, taskId }, "cannot prepare the task");
      return endWithoutRun(taskId, "FAILED", `cannot prepare the task: ${(error as Error).message}`, iso(clock.now()));
    }
    const interrupted = this.#pending;
    if (interrupted) return this.#endBeforeStart(interrupted, iso(clock.now()));
    const output = new TaskOutput({
      taskId,
      maxOutputBytes: this.#options.maxOutputBytes,
      clock,
      send: this.#options.sendChunk,
      onLost: (error) => logger.warn({ err: error, taskId }, "a chunk of the task's output could not be stored: lost"),
    });
    try {
      this.#options.noteMarker(this.#options.marker);
    } catch (error) {
      // Only a crash needs it (to stop what the crash left running): the task still runs.
      logger.warn(
        { err: error, taskId },
        "cannot note the task's marker; a crash now could leave its processes running",
      );
    }
    let child: TaskChild | null = null;
    let started: { ok: true } | { ok: false; error: NodeJS.ErrnoException };
    try {
      const starting = startTaskProcess(spec);
      child = starting;
      started = await new Promise((resolve) => {
        starting.once("spawn", () => resolve({ ok: true }));
        starting.once("error", (error: NodeJS.ErrnoException) => resolve({ ok: false, error }));
      });
    } catch (error) {
      started = { ok: false, error: error as NodeJS.ErrnoException };
    }
    if (!started.ok || child === null) {
      this.#clearMarker();
      const error = started.ok ? null : started.error;
      const why = error?.code === "ENOENT" ? "not found" : (error?.code ?? error?.message ?? "unknown");
      return this.#result("FAILED", {
        error: `cannot start ${spec.file}: ${why}`,
        startedAtMs: null,
        startMonotonicMs: null,
        exit: null,
        summary: await output.finish(),
      });
    }
    this.#child = child;
    const startedAtMs = clock.now();
    const startMonotonicMs = clock.monotonicMs();
    this.#startedAtMs = startedAtMs;
    child.stdout.on("data", (data: Buffer) => output.write("stdout", data));
    child.stderr.on("data", (data: Buffer) => output.write("stderr", data));
    // A pipe's own error (the process gone mid-write) changes nothing: its exit says how it ended.
    child.stdout.on("error", () => undefined);
    child.stderr.on("error", () => undefined);
    const exited = new Promise<Extract<Ending, { kind: "exit" }>>((resolve) =>
      child.once("exit", (code, signal) => resolve({ kind: "exit", code, signal })),
    );
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
    let cancelTimeout: Cancel = () => undefined;
    const ending = await Promise.race<Ending>([
      exited,
      new Promise<Interruption>((resolve) => {
        this.#interrupt = resolve;
        // One that came while the process was starting.
        if (this.#pending) resolve(this.#pending);
        cancelTimeout = timersOf(clock).after(this.#options.timeoutMs, () => resolve({ kind: "timeout" }));
      }),
    ]);
    cancelTimeout();
    this.#interrupt = null;
    const stopping = ending.kind === "agent-stop";
    // What is left of the tree (everything, when it was interrupted; a daemon it started, when it exited).
    const report = await stopProcessTree({
      pid: child.pid as number,
      marker: this.#options.marker,
      // At an agent stop, short enough for the result to be stored within the stop's deadline.
      graceMs: stopping ? AGENT_STOP_GRACE_MS : TASK_GRACE_MS,
      clock,
    });
    if (report.terminated > 0)
      logger.info(
        { taskId, ending: ending.kind, ...report },
        ending.kind === "exit" ? "stopped what the task left running" : "stopped the task's processes",
      );
    if (report.survivors > 0)
      logger.error({ taskId, survivors: report.survivors }, "processes of the task still run after SIGKILL");
    const exit = ending.kind === "exit" ? ending : await raceWith(exited, clock, PIPES_CLOSE_MS);
    // Processes that escaped may hold the pipes open: what they wrote by now is read, the rest not.
    if (
      (await raceWith(
        closed.then(() => true as const),
        clock,
        PIPES_CLOSE_MS,
      )) === null
    ) {
      child.stdout.destroy();
      child.stderr.destroy();
    }
    const summary = await output.finish();
    this.#clearMarker();
    const timing = { startedAtMs, startMonotonicMs, exit, summary };
    switch (ending.kind) {
      case "exit":
        if (ending.signal !== null)
          return this.#result("FAILED", { ...timing, error: `ended by the signal ${ending.signal}` });
        return this.#result(ending.code === 0 ? "SUCCEEDED" : "FAILED", { ...timing, error: null });
      case "timeout":
        return this.#result("TIMED_OUT", {
          ...timing,
          error: `ran past its timeout of ${Math.round(this.#options.timeoutMs / 1000)} s: its processes were stopped`,
        });
      case "cancel":
        return this.#result("CANCELLED", { ...timing, error: `cancelled: ${ending.reason}` });
      case "agent-stop":
        return this.#result("FAILED", {
          ...timing,
          error: "the agent stopped while it ran: its processes were stopped, and it is not run again",
        });
    }
  }

  #end(interruption: Interruption): void {
    if (this.#interrupt) this.#interrupt(interruption);
    else this.#pending ??= interruption;
  }

  #clearMarker(): void {
    try {
      this.#options.noteMarker(null);
    } catch (error) {
      this.#options.logger.warn({ err: error, taskId: this.#options.taskId }, "cannot note the task's processes gone");
    }
  }

  #endBeforeStart(interruption: Interruption, finishedAt: string): TaskResult {
    return interruption.kind === "cancel"
      ? endWithoutRun(
          this.#options.taskId,
          "CANCELLED",
          `cancelled before it started: ${interruption.reason}`,
          finishedAt,
        )
      : endWithoutRun(
          this.#options.taskId,
          "FAILED",
          "the agent stopped before the task started; it is not run again",
          finishedAt,
        );
  }

  #result(
    status: TaskStatus,
    facts: {
      readonly error: string | null;
      readonly startedAtMs: number | null;
      readonly startMonotonicMs: number | null;
      readonly exit: Extract<Ending, { kind: "exit" }> | null;
      readonly summary: Awaited<ReturnType<TaskOutput["finish"]>>;
    },
  ): TaskResult {
    const { clock } = this.#options;
    return {
      taskId: this.#options.taskId,
      status,
      exitCode: facts.exit?.code ?? null,
      signal: facts.exit?.signal ?? null,
      error: facts.error,
      startedAt: facts.startedAtMs === null ? null : new Date(facts.startedAtMs).toISOString(),
      finishedAt: new Date(clock.now()).toISOString(),
      durationMs:
        facts.startMonotonicMs === null ? null : Math.max(0, Math.round(clock.monotonicMs() - facts.startMonotonicMs)),
      ...facts.summary,
    };
  }
}

/** `promise`'s value, or null when it takes longer than `ms`. */
async function raceWith<T>(promise: Promise<T>, clock: Clock, ms: number): Promise<T | null> {
  const timeout = new AbortController();
  const result = await Promise.race([promise, sleepOn(clock, ms, timeout.signal).then(() => null)]);
  timeout.abort();
  return result;
}
