import type { TaskResult, TaskStatus } from "../../contracts/index.ts";
import type { SentCommand } from "./task-publish.ts";
import { formatBytes, formatDuration } from "./task-units.ts";
import type { TaskSummary, WatchEvent } from "./task-watch.ts";

/** Where a view writes: the command's stdout and stderr, as they are (no newline added). */
export interface TaskOutputStreams {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Why following stopped. */
export type FollowEnd = "ended" | "deadline" | "interrupted";

/** How `task run` shows what happens: for people, or one JSON object a line. */
export interface TaskView {
  sent(taskId: string, sent: SentCommand, target: string): void;
  show(event: WatchEvent): void;
  finish(taskId: string, summary: TaskSummary, end: FollowEnd, followedMs: number): void;
}

const STATUS_ORDER: readonly TaskStatus[] = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED"];

/** `FAILED (exit 3) in 2.0 s, output truncated (3.0 MiB written, 1.0 MiB kept): <error>`. */
export function describeEnd(result: TaskResult, missingChunks: number): string {
  const how = [
    result.exitCode !== null ? `exit ${result.exitCode}` : null,
    result.signal !== null ? `signal ${result.signal}` : null,
  ].filter((part) => part !== null);
  const parts = [`${result.status}${how.length > 0 ? ` (${how.join(", ")})` : ""}`];
  if (result.durationMs !== null) parts[0] += ` in ${formatDuration(result.durationMs)}`;
  if (result.truncated) {
    const written = result.bytesSeen.stdout + result.bytesSeen.stderr;
    parts.push(`output truncated at its maxOutputBytes (${formatBytes(written)} written)`);
  }
  if (missingChunks > 0) parts.push(`${missingChunks} output chunk${missingChunks === 1 ? "" : "s"} never came`);
  return `${parts.join(", ")}${result.error ? `: ${result.error}` : ""}`;
}

/** `12 machines: 10 SUCCEEDED, 1 FAILED; silent (output, no end): m7`. */
export function describeSummary(summary: TaskSummary): string {
  if (summary.machines === 0) return "no machine answered";
  const counts = STATUS_ORDER.filter((status) => summary.ends[status] > 0).map(
    (status) => `${summary.ends[status]} ${status}`,
  );
  const machines = `${summary.machines} machine${summary.machines === 1 ? "" : "s"}`;
  const silent =
    summary.silent.length === 0
      ? ""
      : `; silent (output but no end yet): ${summary.silent.slice(0, 20).join(", ")}${summary.silent.length > 20 ? `, ... (${summary.silent.length})` : ""}`;
  return `${machines}: ${counts.length > 0 ? counts.join(", ") : "no end yet"}${silent}`;
}

/** A partial line longer than this is shown anyway (a fleet's partial lines are held per machine). */
const MAX_PARTIAL_LINE = 64 * 1024;

/**
 * For people. One machine: its output as it is, stdout to stdout and stderr to stderr, and our
 * own lines (sent, gaps, the end) on stderr. Several: every line prefixed `[machine] `, a line
 * shown once it is whole.
 */
export class HumanTaskView implements TaskView {
  readonly #out: TaskOutputStreams;
  readonly #prefixed: boolean;
  readonly #partial = new Map<string, string>();
  /** The last text written did not end its line: our next line starts on a fresh one. */
  #lineOpen = false;

  constructor(out: TaskOutputStreams, options: { readonly prefixMachines: boolean }) {
    this.#out = out;
    this.#prefixed = options.prefixMachines;
  }

  sent(taskId: string, sent: SentCommand, target: string): void {
    const how = [`${sent.stream} #${sent.sequence}`, sent.signed ? "signed" : "unsigned", `expires ${sent.expiresAt}`];
    const again = sent.duplicate ? " (the stream already held this very message: not stored twice)" : "";
    this.#note(
      `task ${taskId} sent to ${target} (${how.join(", ")})${again}; following: Ctrl-C stops following, not the task`,
    );
  }

  show(event: WatchEvent): void {
    const tag = this.#prefixed ? `[${event.machineId}] ` : "";
    if (event.kind === "end") {
      for (const stream of ["stdout", "stderr"] as const) this.#flushPartial(event.machineId, stream);
      this.#note(`${tag || `${event.machineId}: `}${describeEnd(event.result, event.missingChunks)}`);
      return;
    }
    const { output } = event;
    if (output.kind === "gap") {
      const which =
        output.fromSeq === output.toSeq ? `chunk ${output.fromSeq}` : `chunks ${output.fromSeq}-${output.toSeq}`;
      this.#note(`${tag}-- output ${which} missing (never reached the stream, or expired from it) --`);
      return;
    }
    const { chunk, late } = output;
    if (late) this.#note(`${tag}-- output chunk ${chunk.seq}, late: --`);
    if (!this.#prefixed) {
      this.#write(chunk.stream, chunk.data);
      return;
    }
    const key = `${event.machineId}\u0000${chunk.stream}`;
    const lines = ((this.#partial.get(key) ?? "") + chunk.data).split("\n");
    let rest = lines.pop() as string;
    for (const line of lines) this.#write(chunk.stream, `${tag}${line}\n`);
    if (rest.length > MAX_PARTIAL_LINE) {
      this.#write(chunk.stream, `${tag}${rest}\n`);
      rest = "";
    }
    if (rest === "") this.#partial.delete(key);
    else this.#partial.set(key, rest);
  }

  finish(taskId: string, summary: TaskSummary, end: FollowEnd, followedMs: number): void {
    for (const key of [...this.#partial.keys()]) {
      const [machineId, stream] = key.split("\u0000") as [string, "stdout" | "stderr"];
      this.#flushPartial(machineId, stream);
    }
    const why =
      end === "deadline"
        ? `; stopped following after ${formatDuration(followedMs)} (--wait, or the task's ttl and timeout passed)`
        : end === "interrupted"
          ? "; stopped following (the task goes on)"
          : "";
    if (this.#prefixed || end !== "ended")
      this.#note(`task ${taskId}: ${describeSummary(summary)}${why}; edge-agent task list shows its ends later`);
  }

  #flushPartial(machineId: string, stream: "stdout" | "stderr"): void {
    const key = `${machineId}\u0000${stream}`;
    const rest = this.#partial.get(key);
    if (rest === undefined) return;
    this.#partial.delete(key);
    this.#write(stream, `[${machineId}] ${rest}\n`);
  }

  #write(stream: "stdout" | "stderr", text: string): void {
    if (text === "") return;
    this.#out[stream](text);
    this.#lineOpen = !text.endsWith("\n");
  }

  #note(line: string): void {
    this.#write("stderr", `${this.#lineOpen ? "\n" : ""}${line}\n`);
  }
}

/** One JSON object a line on stdout: `sent`, `output`, `gap`, `result`, `summary`. */
export class JsonTaskView implements TaskView {
  readonly #out: TaskOutputStreams;

  constructor(out: TaskOutputStreams) {
    this.#out = out;
  }

  sent(taskId: string, sent: SentCommand, target: string): void {
    this.#line({ type: "sent", taskId, target, ...sent });
  }

  show(event: WatchEvent): void {
    if (event.kind === "end") {
      this.#line({ type: "result", machineId: event.machineId, ...event.result, missingChunks: event.missingChunks });
      return;
    }
    const { output } = event;
    if (output.kind === "gap")
      this.#line({ type: "gap", machineId: event.machineId, fromSeq: output.fromSeq, toSeq: output.toSeq });
    else this.#line({ type: "output", machineId: event.machineId, ...output.chunk, late: output.late });
  }

  finish(taskId: string, summary: TaskSummary, end: FollowEnd, followedMs: number): void {
    this.#line({ type: "summary", taskId, ...summary, followEnd: end, followedMs: Math.round(followedMs) });
  }

  #line(value: Record<string, unknown>): void {
    this.#out.stdout(`${JSON.stringify(value)}\n`);
  }
}
