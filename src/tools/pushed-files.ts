import { isSafeToken } from "../contracts/index.ts";
import type { KeyedSerialQueue } from "../runtime/index.ts";
import { placeToolFile, toolDirOf } from "./installer.ts";
import { runToolCommand } from "./run-command.ts";
import type { ToolRecords } from "./tool-records.ts";

/** Where a pushed file goes: `relativePath` in an installed tool's folder, then its service restarted (when named). */
export interface PushedToolFile {
  readonly toolAgentId: string;
  readonly relativePath: string;
  readonly serviceName: string | null;
}

/**
 * Puts a pushed file into an installed tool's folder (atomically: copied beside, then renamed),
 * under the tool's lock (never during its install), and restarts the tool's service when one is
 * named (systemd, on Linux). Throws a clear error when it cannot.
 */
export function placePushedToolFile(
  target: PushedToolFile,
  sourceFile: string,
  tools: { toolsDir: string; records: ToolRecords; lock: KeyedSerialQueue; platform: NodeJS.Platform },
): Promise<void> {
  if (!isSafeToken(target.toolAgentId))
    return Promise.reject(new Error(`${JSON.stringify(target.toolAgentId)} is not a tool name`));
  return tools.lock.run(target.toolAgentId, async () => {
    const record = await tools.records.read(target.toolAgentId);
    if (record?.state !== "INSTALLED") throw new Error(`tool ${target.toolAgentId} is not installed here`);
    await placeToolFile(toolDirOf(tools.toolsDir, target.toolAgentId), target.relativePath, sourceFile);
    if (target.serviceName && tools.platform === "linux") {
      await runToolCommand("systemctl", ["restart", target.serviceName], { cwd: "/", timeoutMs: 60_000 });
    }
  });
}
