import { describe, expect, it } from "vitest";
import { newTaskId } from "../../../src/cli/task/task-command.ts";
import { describeRun } from "../../../src/cli/task/task-list.ts";
import { interpreterOf, planRun, type RunInput } from "../../../src/cli/task/task-plan.ts";
import { natsTtlOf, parseByteCount, parseDuration } from "../../../src/cli/task/task-units.ts";
import { CommandError } from "../../../src/cli-kit/index.ts";
import { TASK_LIMITS, TaskId } from "../../../src/contracts/index.ts";

const defaults = { taskId: "t-default", requestedBy: "ops@desk" };
const input = (overrides: Partial<RunInput>): RunInput => ({ tags: [], all: false, env: [], argv: [], ...overrides });
const refusal = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).exitCode).toBe(2);
    return (error as Error).message;
  }
  throw new Error("not refused");
};

describe("task run's options into the TaskCommand", () => {
  it("one machine: the argv as given, the defaults (timeout 300 s, ttl 1 h), the operator as requestedBy", () => {
    const plan = planRun(input({ machine: "m1", argv: ["uptime", "-p"] }), defaults);
    expect(plan).toEqual({
      target: { kind: "machine", machineId: "m1" },
      body: { taskId: "t-default", run: { argv: ["uptime", "-p"] }, timeoutSeconds: 300, requestedBy: "ops@desk" },
      ttlMs: 3_600_000,
      waitMs: null,
    });
  });

  it("a fleet by tags carries the selector; --all none; env, workdir, output bound, id and durations as typed", () => {
    const plan = planRun(
      input({
        tags: ["site=lab", "role=db"],
        argv: ["df", "-h"],
        env: ["A=1", "B=x=y z"],
        workdir: "/var/tmp/x",
        maxOutput: "64KiB",
        taskId: "mine",
        timeout: "2m",
        ttl: "90s",
        wait: "1h30m",
      }),
      defaults,
    );
    expect(plan.target).toEqual({ kind: "fleet", selector: { tags: { site: "lab", role: "db" } } });
    expect(plan.body).toEqual({
      taskId: "mine",
      run: { argv: ["df", "-h"] },
      env: { A: "1", B: "x=y z" },
      workingDir: "/var/tmp/x",
      timeoutSeconds: 120,
      maxOutputBytes: 65_536,
      selector: { tags: { site: "lab", role: "db" } },
      requestedBy: "ops@desk",
    });
    expect(plan.ttlMs).toBe(90_000);
    expect(plan.waitMs).toBe(5_400_000);
    expect(planRun(input({ all: true, argv: ["true"] }), defaults).body.selector).toBeUndefined();
  });

  it("a script with its interpreter: asked, else its #! line, else its extension, else sh", () => {
    const script = (path: string, text: string, interpreter?: string) =>
      planRun(input({ machine: "m1", script: { path, text }, ...(interpreter ? { interpreter } : {}) }), defaults).body
        .run;
    expect(script("/x/a.sh", "echo hi\n")).toEqual({ script: "echo hi\n", interpreter: "sh" });
    expect(script("/x/a", "#!/usr/bin/env bash\necho\n")).toMatchObject({ interpreter: "bash" });
    expect(script("/x/a", "#!/bin/bash -e\necho\n")).toMatchObject({ interpreter: "bash" });
    expect(script("/x/a.ps1", "Get-Date\n")).toMatchObject({ interpreter: "powershell" });
    expect(script("/x/a.BAT", "dir\n")).toMatchObject({ interpreter: "cmd" });
    expect(script("/x/a.sh", "echo\n", "bash")).toMatchObject({ interpreter: "bash" });
    expect(interpreterOf({ path: "a", text: "#!/bin/dash\n" }, undefined)).toBe("sh");
  });

  it("refuses, naming the option, whatever every agent would refuse", () => {
    expect(refusal(() => planRun(input({ argv: ["x"] }), defaults))).toMatch(/say which machines/);
    expect(refusal(() => planRun(input({ machine: "m1", all: true, argv: ["x"] }), defaults))).toMatch(/exclude/);
    expect(refusal(() => planRun(input({ machine: "m1" }), defaults))).toMatch(/nothing to run/);
    expect(
      refusal(() => planRun(input({ machine: "m1", argv: ["x"], script: { path: "a", text: "b" } }), defaults)),
    ).toMatch(/either --script FILE or a program/);
    expect(refusal(() => planRun(input({ machine: "m1", argv: ["x"], interpreter: "sh" }), defaults))).toMatch(
      /--interpreter goes with --script/,
    );
    expect(
      refusal(() => planRun(input({ machine: "m1", script: { path: "a", text: "b" }, interpreter: "zsh" }), defaults)),
    ).toMatch(/--interpreter "zsh" is not one of sh, bash, powershell, cmd/);
    expect(refusal(() => planRun(input({ tags: ["site"], argv: ["x"] }), defaults))).toMatch(
      /--tag "site" must be key=value/,
    );
    expect(refusal(() => planRun(input({ tags: ["a=1", "a=2"], argv: ["x"] }), defaults))).toMatch(/given twice/);
    expect(refusal(() => planRun(input({ machine: "m1", argv: ["x"], env: ["EDGE_MODE=1"] }), defaults))).toMatch(
      /--env: environment variable EDGE_MODE: names starting EDGE_ are the agent's own/,
    );
    const manyArgs = Array.from({ length: TASK_LIMITS.maxArgs + 1 }, () => "a");
    expect(refusal(() => planRun(input({ machine: "m1", argv: manyArgs }), defaults))).toMatch(
      /the program after --: at most 256 arguments/,
    );
    expect(refusal(() => planRun(input({ machine: "m1", argv: [""] }), defaults))).toMatch(/argv\[0\]/);
    expect(refusal(() => planRun(input({ machine: "m1", argv: ["x"], workdir: "rel/dir" }), defaults))).toMatch(
      /absolute/,
    );
    expect(refusal(() => planRun(input({ machine: "m1", argv: ["x"], timeout: "25h" }), defaults))).toMatch(
      /--timeout is at most 24 h/,
    );
    expect(refusal(() => planRun(input({ machine: "m1", argv: ["x"], taskId: "a/b" }), defaults))).toMatch(
      /--task-id: a taskId is letters/,
    );
    expect(refusal(() => planRun(input({ machine: "m1", argv: ["x"], maxOutput: "17MiB" }), defaults))).toMatch(
      /--max-output: /,
    );
  });
});

describe("durations, byte counts and task ids", () => {
  it("reads seconds and amounts with units, and refuses anything else", () => {
    expect(parseDuration("90", "--ttl")).toBe(90_000);
    expect(parseDuration("1h30m", "--ttl")).toBe(5_400_000);
    expect(parseDuration("7d", "--since")).toBe(604_800_000);
    expect(parseDuration("1.5s", "--wait")).toBe(1_500);
    expect(parseDuration("250ms", "--wait")).toBe(250);
    for (const bad of ["", "0", "0s", "ten", "1w", "-5", "1h-"])
      expect(refusal(() => parseDuration(bad, "--ttl"))).toMatch(/^--ttl .* is not a duration/);
    expect(natsTtlOf(3_600_000)).toBe("3600s");
    expect(natsTtlOf(1)).toBe("1s");
  });

  it("reads byte counts in units of 1,024", () => {
    expect(parseByteCount("65536", "--max-output")).toBe(65_536);
    expect(parseByteCount("64K", "--max-output")).toBe(65_536);
    expect(parseByteCount("1MiB", "--max-output")).toBe(1_048_576);
    expect(refusal(() => parseByteCount("1GB", "--max-output"))).toMatch(/not a byte count/);
  });

  it("a fresh task id is a valid one, with its time in it", () => {
    const id = newTaskId(Date.parse("2026-12-07T10:15:00.000Z"));
    expect(id).toMatch(/^20261207-101500-[0-9a-f]{8}$/);
    expect(TaskId.safeParse(id).success).toBe(true);
  });

  it("a listing shows what ran on one short line", () => {
    expect(describeRun({ argv: ["sh", "-c", "echo hi"] })).toBe('sh -c "echo hi"');
    expect(describeRun({ script: "set -e\n\napt update\napt upgrade -y\n", interpreter: "bash" })).toBe(
      "bash script, 3 lines",
    );
    expect(describeRun({ argv: ["x".repeat(100)] })).toHaveLength(60);
  });
});
