import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ToolConnectionMessage } from "../contracts/index.ts";
import type { ToolRecord } from "./tool-state.ts";
import { runToolCommand } from "./run-command.ts";

export type LivenessState = NonNullable<ToolConnectionMessage["state"]>;

/** Whether a tool is running: its service (SERVICE tools, via systemd) or any process started from its folder. */
export async function checkToolAlive(record: ToolRecord, toolDir: string, platform: NodeJS.Platform): Promise<{ state: LivenessState; detail: string }> {
  const service = record.message.downloadConfigurations.find((configuration) => configuration.installationType === "SERVICE" && configuration.serviceName)?.serviceName;
  if (service && platform === "linux") {
    return new Promise((resolve) => {
      execFile("systemctl", ["is-active", "--quiet", service], { timeout: 5_000 }, (error) => {
        if (!error) return resolve({ state: "CONNECTED", detail: `service ${service} is active` });
        const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
        resolve(missing ? { state: "UNKNOWN", detail: "systemctl is not available" } : { state: "DISCONNECTED", detail: `service ${service} is not active` });
      });
    });
  }
  if (platform !== "linux") return { state: "UNKNOWN", detail: `process checks are not available on ${platform}` };
  const prefix = `${toolDir}/`;
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(join("/proc", entry, "cmdline"), "utf8").catch(() => "");
    if (cmdline.split("\0").some((argument) => argument.startsWith(prefix))) return { state: "CONNECTED", detail: `process ${entry} runs from ${toolDir}` };
  }
  return { state: "DISCONNECTED", detail: `no process runs from ${toolDir}` };
}

/** The tool's own id, from `toolAgentIdCommandArgs` (15 s at most): the first line it prints. */
export async function readAgentToolId(record: ToolRecord, toolDir: string): Promise<string | null> {
  if (!record.mainFile || record.message.toolAgentIdCommandArgs.length === 0) return null;
  const { stdout } = await runToolCommand(join(toolDir, record.mainFile), record.message.toolAgentIdCommandArgs, { cwd: toolDir, timeoutMs: 15_000 });
  const id = stdout.trim().split("\n")[0]?.trim() ?? "";
  return id === "" ? null : id;
}
