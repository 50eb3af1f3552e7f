import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TaskCommand, TaskInterpreter } from "../contracts/index.ts";
import { SETTING_SPECS } from "../settings/index.ts";
import { TASK_MARKER_VARIABLE } from "./marker-scan.ts";
import type { TaskProcessSpec } from "./process-tree.ts";

/** The file a script is written to in the task's own folder, by interpreter (the extension Windows needs). */
const SCRIPT_FILE: Readonly<Record<TaskInterpreter, string>> = {
  sh: "task.sh",
  bash: "task.sh",
  powershell: "task.ps1",
  cmd: "task.cmd",
};

/** How each interpreter is given a script file: no shell in between, the file as its own argument. */
function interpreterCommand(interpreter: TaskInterpreter, script: string): { file: string; args: string[] } {
  switch (interpreter) {
    case "sh":
      return { file: "sh", args: [script] };
    case "bash":
      return { file: "bash", args: [script] };
    case "powershell":
      return {
        file: "powershell.exe",
        args: ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", script],
      };
    case "cmd":
      return { file: "cmd.exe", args: ["/d", "/c", script] };
  }
}

/** The agent's own variables: every name its settings are read from (credentials among them), and EDGE_*. */
const AGENT_VARIABLES = new Set(SETTING_SPECS.flatMap((spec) => spec.env).map((name) => name.toUpperCase()));
const isAgentVariable = (name: string): boolean =>
  name.toUpperCase().startsWith("EDGE_") || AGENT_VARIABLES.has(name.toUpperCase());

/** A new marker for one run of a task: its id and a random nonce, so no other run's processes carry it. */
export function newMarker(taskId: string): string {
  return `${taskId}:${randomBytes(12).toString("hex")}`;
}

/**
 * A task's environment: the agent's, without the agent's own variables (its settings, the NATS
 * credentials among them, are not the task's), then the task's `env`, then the marker.
 */
export function taskEnvironment(
  base: Readonly<Record<string, string | undefined>>,
  command: TaskCommand,
  marker: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base))
    if (value !== undefined && !isAgentVariable(name)) env[name] = value;
  return { ...env, ...command.env, [TASK_MARKER_VARIABLE]: marker };
}

/**
 * What to start for `command` in `cwd`: its program and arguments as given, or the interpreter with
 * the script, which is first written to `folder` (the task's own; readable by the task, confined or not).
 */
export async function launchSpec(
  command: TaskCommand,
  where: { readonly cwd: string; readonly folder: string },
  env: Record<string, string>,
): Promise<TaskProcessSpec> {
  if ("argv" in command.run) {
    const [file, ...args] = command.run.argv;
    return { file: file as string, args, cwd: where.cwd, env };
  }
  const script = join(where.folder, SCRIPT_FILE[command.run.interpreter]);
  await writeFile(script, command.run.script, { mode: 0o600 });
  return { ...interpreterCommand(command.run.interpreter, script), cwd: where.cwd, env };
}
