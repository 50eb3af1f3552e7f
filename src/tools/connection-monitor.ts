import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ToolConnectionState } from "../contracts/index.ts";
import { runToolCommand } from "./run-command.ts";
import type { ServiceState } from "./service-state.ts";
import type { ToolRecord } from "./tool-state.ts";

export type LivenessState = ToolConnectionState;

/** Whether a tool is running: its service (SERVICE tools) or else any process started from its folder. */
export async function checkToolAlive(
  record: ToolRecord,
  toolDir: string,
  platform: NodeJS.Platform,
  serviceState: (name: string) => Promise<ServiceState>,
): Promise<{ state: LivenessState; detail: string }> {
  const service = record.message.downloadConfigurations.find(
    (configuration) => configuration.installationType === "SERVICE" && configuration.serviceName,
  )?.serviceName;
  if (service) {
    const state = await serviceState(service);
    if (state === "active") return { state: "CONNECTED", detail: `service ${service} is active` };
    if (state === "inactive") return { state: "DISCONNECTED", detail: `service ${service} is not active` };
    // No service manager to ask: fall back to looking for its processes.
  }
  if (platform !== "linux") return { state: "UNKNOWN", detail: `process checks are not available on ${platform}` };
  const prefix = `${toolDir}/`;
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(join("/proc", entry, "cmdline"), "utf8").catch(() => "");
    if (cmdline.split("\0").some((argument) => argument.startsWith(prefix)))
      return { state: "CONNECTED", detail: `process ${entry} runs from ${toolDir}` };
  }
  return { state: "DISCONNECTED", detail: `no process runs from ${toolDir}` };
}

/** The tool's own id, from `toolAgentIdCommandArgs` (15 s at most): the first line it prints. */
export async function readAgentToolId(record: ToolRecord, toolDir: string): Promise<string | null> {
  if (!record.mainFile || record.message.toolAgentIdCommandArgs.length === 0) return null;
  const { stdout } = await runToolCommand(join(toolDir, record.mainFile), record.message.toolAgentIdCommandArgs, {
    cwd: toolDir,
    timeoutMs: 15_000,
  });
  const id = stdout.trim().split("\n")[0]?.trim() ?? "";
  return id === "" ? null : id;
}
