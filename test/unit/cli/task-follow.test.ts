import { describe, expect, it } from "vitest";
import { ChunkSequencer } from "../../../src/cli/task/chunk-sequencer.ts";
import { attributedMachine } from "../../../src/cli/task/task-follower.ts";
import { exitCodeOfResult, exitCodeOfRun } from "../../../src/cli/task/task-run.ts";
import { TaskWatch } from "../../../src/cli/task/task-watch.ts";
import type { TaskOutputChunk, TaskResult } from "../../../src/contracts/index.ts";

const chunk = (seq: number, data = `c${seq}`): TaskOutputChunk => ({
  taskId: "t1",
  seq,
  stream: "stdout",
  data,
  at: "2026-12-07T10:00:00.000Z",
});
const result = (end: Partial<TaskResult> & Pick<TaskResult, "status">): TaskResult => ({
  taskId: "t1",
  exitCode: null,
  signal: null,
  error: null,
  startedAt: null,
  finishedAt: "2026-12-07T10:00:01.000Z",
  durationMs: 1_000,
  bytesSeen: { stdout: 0, stderr: 0 },
  truncated: false,
  chunks: 0,
  lastLines: { stdout: [], stderr: [] },
  ...end,
});
const shown = (items: ReturnType<ChunkSequencer["accept"]>): string[] =>
  items.map((item) =>
    item.kind === "gap" ? `gap ${item.fromSeq}-${item.toSeq}` : `${item.chunk.seq}${item.late ? " late" : ""}`,
  );

describe("ChunkSequencer: one machine's chunks back in seq order, holes shown as gaps", () => {
  it("passes chunks in order through at once", () => {
    const sequencer = new ChunkSequencer(1_000);
    expect(shown(sequencer.accept(chunk(0), 0))).toEqual(["0"]);
    expect(shown(sequencer.accept(chunk(1), 0))).toEqual(["1"]);
    expect(sequencer.dueAtMs).toBeNull();
  });

  it("holds a chunk past a hole until the hole fills, then releases both in order", () => {
    const sequencer = new ChunkSequencer(1_000);
    sequencer.accept(chunk(0), 0);
    expect(shown(sequencer.accept(chunk(2), 10))).toEqual([]);
    expect(shown(sequencer.accept(chunk(3), 20))).toEqual([]);
    expect(sequencer.dueAtMs).toBe(1_010);
    expect(shown(sequencer.due(1_009))).toEqual([]);
    expect(shown(sequencer.accept(chunk(1), 500))).toEqual(["1", "2", "3"]);
    expect(sequencer.missingCount).toBe(0);
    expect(sequencer.dueAtMs).toBeNull();
  });

  it("declares a hole after holdMs, releases what it held, and takes the missing chunk late if it comes", () => {
    const sequencer = new ChunkSequencer(1_000);
    sequencer.accept(chunk(0), 0);
    sequencer.accept(chunk(3), 100);
    sequencer.accept(chunk(5), 200);
    expect(shown(sequencer.due(1_100))).toEqual(["gap 1-2", "3"]);
    // The next hole is waited on from the moment the first was given up on.
    expect(sequencer.dueAtMs).toBe(2_100);
    expect(shown(sequencer.due(2_100))).toEqual(["gap 4-4", "5"]);
    expect(sequencer.missingCount).toBe(3);
    expect(shown(sequencer.accept(chunk(2), 2_200))).toEqual(["2 late"]);
    expect(shown(sequencer.accept(chunk(2), 2_300))).toEqual([]);
    expect(shown(sequencer.accept(chunk(5), 2_300))).toEqual([]);
    expect(sequencer.missingCount).toBe(2);
  });

  it("finish: everything held goes out and the tail up to the count the end gives is a gap", () => {
    const sequencer = new ChunkSequencer(1_000);
    sequencer.accept(chunk(0), 0);
    sequencer.accept(chunk(2), 0);
    expect(shown(sequencer.finish(5, 10))).toEqual(["gap 1-1", "2", "gap 3-4"]);
    expect(sequencer.missingCount).toBe(3);
    expect(sequencer.settledCount).toBe(5);
  });

  it("a huge jump in seq costs one range, not one entry per missing chunk", () => {
    const sequencer = new ChunkSequencer(0);
    sequencer.accept(chunk(1e12), 0);
    expect(shown(sequencer.due(0))).toEqual([`gap 0-${1e12 - 1}`, `${1e12}`]);
    expect(shown(sequencer.accept(chunk(7), 1))).toEqual(["7 late"]);
    expect(sequencer.missingCount).toBe(1e12 - 1);
  });
});

describe("TaskWatch: each machine's output, then its end once", () => {
  it("an end that counts chunks not read yet waits for them, at most endGraceMs", () => {
    const watch = new TaskWatch({ holdMs: 1_000, endGraceMs: 2_000 });
    expect(watch.result("m1", result({ status: "SUCCEEDED", exitCode: 0, chunks: 2 }), 0)).toEqual([]);
    expect(watch.chunk("m1", chunk(0), 10).map((event) => event.kind)).toEqual(["output"]);
    const events = watch.chunk("m1", chunk(1), 20);
    expect(events.map((event) => event.kind)).toEqual(["output", "end"]);
    expect(watch.hasEnded("m1")).toBe(true);

    expect(watch.result("m2", result({ status: "FAILED", exitCode: 1, chunks: 1 }), 0)).toEqual([]);
    expect(watch.tick(1_999)).toEqual([]);
    const late = watch.tick(2_000);
    expect(late).toEqual([
      { kind: "output", machineId: "m2", output: { kind: "gap", fromSeq: 0, toSeq: 0 } },
      expect.objectContaining({ kind: "end", machineId: "m2", missingChunks: 1 }),
    ]);
    // A copy of an end (stored again) is not shown twice.
    expect(watch.result("m2", result({ status: "FAILED", exitCode: 1, chunks: 1 }), 3_000)).toEqual([]);
  });

  it("the summary counts ends by status and names machines heard from without an end", () => {
    const watch = new TaskWatch({ holdMs: 1_000, endGraceMs: 2_000 });
    watch.result("a", result({ status: "SUCCEEDED", exitCode: 0 }), 0);
    watch.result("b", result({ status: "TIMED_OUT", signal: "SIGKILL" }), 0);
    watch.chunk("c", chunk(0), 0);
    watch.chunk("d", chunk(1), 0);
    expect(watch.summary()).toEqual({
      machines: 4,
      ends: { SUCCEEDED: 1, FAILED: 0, TIMED_OUT: 1, CANCELLED: 0, REJECTED: 0 },
      silent: ["c", "d"],
      missingChunks: 0,
    });
    expect(watch.flush(10)).toEqual([]);
  });
});

describe("exit codes of task run", () => {
  it("one machine passes on its task's exit code, never 0 for a failure, else 1", () => {
    expect(exitCodeOfResult(result({ status: "SUCCEEDED", exitCode: 0 }))).toBe(0);
    expect(exitCodeOfResult(result({ status: "FAILED", exitCode: 3 }))).toBe(3);
    expect(exitCodeOfResult(result({ status: "FAILED", exitCode: 256 }))).toBe(1);
    expect(exitCodeOfResult(result({ status: "FAILED", exitCode: -1073741819 }))).toBe(1);
    expect(exitCodeOfResult(result({ status: "TIMED_OUT", signal: "SIGKILL" }))).toBe(1);
    expect(exitCodeOfResult(result({ status: "REJECTED", error: "unsigned" }))).toBe(1);
  });

  it("no end: 124 at the deadline, 130 on Ctrl-C; a fleet: 0 only when every end SUCCEEDED and none is silent", () => {
    const summary = (ends: Partial<Record<string, number>>, silent: string[] = []) => ({
      machines: 1,
      ends: { SUCCEEDED: 0, FAILED: 0, TIMED_OUT: 0, CANCELLED: 0, REJECTED: 0, ...ends },
      silent,
      missingChunks: 0,
    });
    const one = { target: { kind: "machine", machineId: "m1" } } as const;
    const fleet = { target: { kind: "fleet", selector: undefined } } as const;
    expect(exitCodeOfRun(one, summary({}), "deadline", null)).toBe(124);
    expect(exitCodeOfRun(one, summary({}), "interrupted", null)).toBe(130);
    expect(exitCodeOfRun(fleet, summary({}), "interrupted", null)).toBe(124);
    expect(exitCodeOfRun(fleet, summary({ SUCCEEDED: 3 }), "interrupted", null)).toBe(0);
    expect(exitCodeOfRun(fleet, summary({ SUCCEEDED: 3 }, ["m9"]), "deadline", null)).toBe(1);
    expect(exitCodeOfRun(fleet, summary({ SUCCEEDED: 3, REJECTED: 1 }), "deadline", null)).toBe(1);
  });
});

describe("attributedMachine", () => {
  it("takes a message as its subject's machine's only when its one X-Machine-ID names that machine", () => {
    expect(attributedMachine("machine.m1.task.output", ["m1"])).toBe("m1");
    expect(attributedMachine("machine.m1.task.output", [])).toBeNull();
    expect(attributedMachine("machine.m1.task.output", ["m2"])).toBeNull();
    expect(attributedMachine("machine.m1.task.output", ["m1", "m1"])).toBeNull();
    expect(attributedMachine("machine.all.task.output", ["all"])).toBeNull();
  });
});
