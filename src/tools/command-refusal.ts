import { isSafeToken } from "../contracts/index.ts";
import { echoInput, truncateInput } from "../runtime/index.ts";

/**
 * Longest toolAgentId taken: it names a folder, a state file (`<id>.state.json`, within the
 * 255-byte file-name limit) and a durable consumer. A longer one is refused with a FAILED status.
 */
export const MAX_TOOL_AGENT_ID_CHARS = 128;

/** Why a well-formed tool command's toolAgentId cannot be taken, fit for a status and a log line; null when it can. */
export function toolAgentIdRefusal(toolAgentId: string): string | null {
  if (toolAgentId.length > MAX_TOOL_AGENT_ID_CHARS)
    return `toolAgentId is ${toolAgentId.length} characters long, over the ${MAX_TOOL_AGENT_ID_CHARS} allowed`;
  if (!isSafeToken(toolAgentId)) return `toolAgentId ${echoInput(toolAgentId)} is not a safe name`;
  return null;
}

/** The toolAgentId a refused command's FAILED status names (cut to fit), or null when it has none. */
export function reportedToolAgentId(raw: unknown): string | null {
  const toolAgentId = (raw as { toolAgentId?: unknown } | null)?.toolAgentId;
  if (typeof toolAgentId !== "string" || toolAgentId === "") return null;
  return truncateInput(toolAgentId, MAX_TOOL_AGENT_ID_CHARS);
}
