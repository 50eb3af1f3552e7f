import type { DownloadRecord, ToolInstallationMessage, ToolInstallationStatus } from "../contracts/index.ts";
import { truncateInput } from "../runtime/index.ts";

/**
 * A tool status naming the tool as `message` does. Cut to fit: a status is one small message,
 * whatever the command that caused it carried.
 */
export function toolStatusBody(
  message: Pick<ToolInstallationMessage, "toolAgentId" | "toolId" | "toolType" | "version">,
  state: ToolInstallationStatus["state"],
  error: string | null,
  timestamp: string,
  downloads?: readonly DownloadRecord[],
): ToolInstallationStatus {
  const field = (value: string | null | undefined): string | null =>
    value === null || value === undefined ? null : truncateInput(value, 256);
  return {
    toolAgentId: field(message.toolAgentId) as string,
    toolId: field(message.toolId),
    toolType: field(message.toolType),
    version: field(message.version),
    state,
    error: error === null ? null : truncateInput(error, 2_000),
    timestamp,
    ...(downloads && downloads.length > 0 ? { downloads: [...downloads] } : {}),
  };
}
