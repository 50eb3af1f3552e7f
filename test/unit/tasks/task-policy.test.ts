import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { TaskCommand } from "../../../src/contracts/index.ts";
import { expiryRefusal, policyRefusal, selectorVerdict } from "../../../src/tasks/task-policy.ts";
import { taskTrust } from "../../../src/tasks/task-trust.ts";
import { chooseWorkingDir } from "../../../src/tasks/working-dir.ts";
import type { CommandTrust } from "../../../src/trust/index.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const script = (interpreter: "sh" | "bash" | "powershell" | "cmd"): TaskCommand => ({
  taskId: "t",
  run: { script: "true", interpreter },
  timeoutSeconds: 10,
});
const argv: TaskCommand = { taskId: "t", run: { argv: ["true"] }, timeoutSeconds: 10 };
const open = { enabled: true, allowArgv: true, allowedInterpreters: ["sh", "bash"] } as const;

describe("a machine's task policy", () => {
  it("names the setting that refuses a task", () => {
    expect(policyRefusal(argv, open, "linux")).toBeNull();
    expect(policyRefusal(script("bash"), open, "linux")).toBeNull();
    expect(policyRefusal(argv, { ...open, enabled: false }, "linux")).toMatch(/tasks\.enabled is false/);
    expect(policyRefusal(argv, { ...open, allowArgv: false }, "linux")).toMatch(/tasks\.allowArgv is false/);
    expect(policyRefusal(script("bash"), { ...open, allowedInterpreters: ["sh"] }, "linux")).toMatch(
      /interpreter bash is not allowed on this machine \(tasks\.allowedInterpreters: sh\)/,
    );
    expect(policyRefusal(script("sh"), { ...open, allowedInterpreters: [] }, "darwin")).toMatch(
      /tasks\.allowedInterpreters: none/,
    );
  });

  it("runs a script only with an interpreter of this OS, whatever the list allows", () => {
    const all = { ...open, allowedInterpreters: ["sh", "bash", "powershell", "cmd"] } as const;
    expect(policyRefusal(script("powershell"), all, "linux")).toMatch(/not one of this machine's \(linux: sh, bash\)/);
    expect(policyRefusal(script("sh"), all, "win32")).toMatch(/not one of this machine's \(win32: powershell, cmd\)/);
    expect(policyRefusal(script("cmd"), all, "win32")).toBeNull();
  });

  it("wants an expiry: a Nats-TTL or an expiresAt, not past", () => {
    const now = Date.parse("2026-12-01T10:00:00Z");
    expect(expiryRefusal(undefined, null, now)).toMatch(/a task must carry an expiry/);
    expect(expiryRefusal(undefined, now + 1, now)).toBeNull();
    expect(expiryRefusal("2026-12-01T10:00:01Z", null, now)).toBeNull();
    expect(expiryRefusal("2026-12-01T10:00:00Z", null, now)).toMatch(/expired at 2026-12-01T10:00:00Z/);
  });

  it("runs a fleet task where its selector matches, settles it silently elsewhere, and refuses a selector on a machine's own task", () => {
    const fleet = { ...argv, selector: { tags: { site: "lab", role: "db" } } };
    expect(selectorVerdict(fleet, true, { site: "lab", role: "db", rack: "3" })).toEqual({ kind: "run" });
    expect(selectorVerdict(fleet, true, { site: "lab" })).toEqual({ kind: "not-selected" });
    expect(selectorVerdict(argv, true, {})).toEqual({ kind: "run" });
    expect(selectorVerdict(fleet, false, { site: "lab", role: "db" })).toMatchObject({ kind: "refuse" });
    expect(selectorVerdict(argv, false, {})).toEqual({ kind: "run" });
  });
});

describe("a task's working dir", () => {
  it("is its own folder, or an existing folder under the data dir or an allowed one, judged where links lead", async () => {
    const root = scratchDir("edge-agent-wd-");
    const dataDir = join(root, "data");
    const allowed = join(root, "jobs");
    for (const folder of [dataDir, join(dataDir, "work"), join(dataDir, "tasks", "other"), allowed, join(root, "else")])
      mkdirSync(folder, { recursive: true });
    symlinkSync(join(root, "else"), join(allowed, "link"));
    const choose = (requested: string | undefined) =>
      chooseWorkingDir(requested, { dataDir, allowedWorkingDirs: [allowed], taskId: "t-1" });
    expect(await choose(undefined)).toEqual({ path: join(dataDir, "tasks", "t-1") });
    expect(await choose(join(dataDir, "work"))).toEqual({ path: join(dataDir, "work") });
    expect(await choose(allowed)).toEqual({ path: allowed });
    expect(await choose("work")).toEqual({ refusal: 'workingDir "work" is not an absolute path' });
    expect(await choose(join(root, "missing"))).toMatchObject({ refusal: expect.stringMatching(/does not exist/) });
    writeFileSync(join(dataDir, "a-file"), "");
    expect(await choose(join(dataDir, "a-file"))).toMatchObject({ refusal: expect.stringMatching(/is not a folder/) });
    expect(await choose(join(dataDir, "tasks", "other"))).toMatchObject({
      refusal: expect.stringMatching(/the tasks' own folders/),
    });
    expect(await choose(join(allowed, "link"))).toMatchObject({
      refusal: expect.stringMatching(/\(.*\/else\) is not under the data dir .* tasks\.allowedWorkingDirs/),
    });
  });
});

describe("the gate tasks pass", () => {
  const agentTrust = (mode: CommandTrust["mode"]): CommandTrust => ({
    signing: mode === "signed",
    mode,
    admit: async () => ({ admitted: true, serial: 7 }),
    finish: async () => undefined,
  });

  it("is the agent's own with a signing key; without one, only tasks.allowUnsigned takes unsigned tasks", async () => {
    const signed = agentTrust("signed");
    expect(taskTrust(signed, false)).toBe(signed);
    expect(taskTrust(agentTrust("unsigned"), true).mode).toBe("unsigned");
    const refused = taskTrust(agentTrust("unsigned"), false);
    expect(refused.mode).toBe("refused");
    expect(await refused.admit({}, { scope: "machine.m.task", ref: "TASKS:1" })).toMatchObject({
      admitted: false,
      code: "EDGE_TRUST_NO_KEY",
      error: expect.stringContaining("tasks.allowUnsigned (EDGE_AGENT_TASKS_ALLOW_UNSIGNED"),
    });
  });
});
