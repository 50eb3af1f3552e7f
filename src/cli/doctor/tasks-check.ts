import type { Settings } from "../../settings/index.ts";
import { SandboxCheck } from "../../tasks/index.ts";
import { type CheckResult, fail, pass, warn } from "./check-result.ts";

const CHECK = "tasks";

/**
 * What remote tasks may do here, and, when they are to be confined, whether a sandbox can be made on
 * this machine for real (the same trial the agent makes before its first confined task).
 */
export async function tasksCheck(
  settings: Pick<Settings, "tasks">,
  environment: Readonly<Record<string, string | undefined>>,
): Promise<CheckResult> {
  const { tasks } = settings;
  if (!tasks.enabled) return pass(CHECK, "off (tasks.enabled false): every task is refused");
  const signing = tasks.allowUnsigned ? "unsigned tasks taken (tasks.allowUnsigned)" : "signed only";
  if (tasks.confine === "working-dir") {
    const problem = await new SandboxCheck(environment).problem();
    if (problem)
      return fail(
        CHECK,
        `${signing}; confined tasks are refused: ${problem}`,
        "install bubblewrap and allow user namespaces (docs/tasks.md), or set tasks.confine none",
      );
    return pass(CHECK, `${signing}; confined to their working dir (a bubblewrap sandbox works here)`);
  }
  if (tasks.allowUnsigned)
    return warn(
      CHECK,
      `${signing}; not confined: any machine that can store a task here runs programs as this agent`,
      "take tasks signed only (unset tasks.allowUnsigned) outside development",
    );
  return pass(CHECK, `${signing}; not confined (tasks.confine none), inside the service's hardening`);
}
