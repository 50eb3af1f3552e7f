import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tasksCheck } from "../../../src/cli/doctor/tasks-check.ts";
import { loadSettings } from "../../../src/settings/index.ts";

describe("doctor: the tasks check", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "edge-doctor-tasks-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const settingsWith = (env: Record<string, string>) =>
    loadSettings({
      env: { EDGE_AGENT_DATA_DIR: join(root, "data"), EDGE_AGENT_CONFIG_DIR: join(root, "config"), ...env },
      platform: "linux",
      privileged: false,
    }).settings;

  it("says what tasks may do: off, signed only, or unsigned (a WARN)", async () => {
    expect(await tasksCheck(settingsWith({ EDGE_AGENT_TASKS_ENABLED: "false" }), process.env)).toMatchObject({
      verdict: "PASS",
      reason: expect.stringContaining("every task is refused"),
    });
    expect(await tasksCheck(settingsWith({}), process.env)).toMatchObject({
      verdict: "PASS",
      reason: expect.stringMatching(/^signed only; not confined/),
    });
    expect(await tasksCheck(settingsWith({ EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "true" }), process.env)).toMatchObject({
      verdict: "WARN",
      action: expect.stringContaining("tasks.allowUnsigned"),
    });
  });

  it("passes confinement where a sandbox can be made (bubblewrap, which the test setup installs)", async () => {
    expect(await tasksCheck(settingsWith({ EDGE_AGENT_TASKS_CONFINE: "working-dir" }), process.env)).toMatchObject({
      verdict: "PASS",
      reason: "signed only; confined to their working dir (a bubblewrap sandbox works here)",
    });
  });

  it("fails confinement where no sandbox can be made (no bwrap on the PATH), naming why", async () => {
    const confined = settingsWith({ EDGE_AGENT_TASKS_CONFINE: "working-dir" });
    expect(await tasksCheck(confined, { PATH: join(root, "no-such-folder") })).toMatchObject({
      verdict: "FAIL",
      reason: expect.stringContaining("bubblewrap (bwrap), which is not installed"),
      action: expect.stringContaining("tasks.confine none"),
    });
  });
});
