import { openFrameToolType, type ToolConnectionMessage, type ToolInstallationStatus } from "../contracts/index.ts";
import { echoInput } from "../runtime/index.ts";
import type { LivenessState } from "./connection-monitor.ts";
import type { ToolRecord } from "./tool-state.ts";
import { toolStatusBody } from "./tool-status.ts";

export interface ConnectionReports {
  /** Always: the tool's liveness on its own tool status (`connection`), whatever it is. */
  readonly status: ToolInstallationStatus;
  /** OpenFrame's ToolConnectionMessage, only for a tool that runs and whose type OpenFrame knows. */
  readonly connection: ToolConnectionMessage | null;
  /** Why a running tool's ToolConnectionMessage is withheld, for the log; null when sent or not running. */
  readonly withheld: string | null;
}

/**
 * How one installed tool's liveness is reported. OpenFrame marks a tool CONNECTED on every
 * ToolConnectionMessage it reads, and refuses (redelivers, forever) one whose `toolType` is not
 * one of its ToolType names: so that message goes only for a tool that runs, with the type it
 * was installed with. A stopped tool, or one whose state is unknown, is reported on the tool
 * status stream alone, which is ours.
 */
export function connectionReports(
  record: ToolRecord,
  liveness: { readonly state: LivenessState; readonly detail: string },
  agentToolId: string | null,
  timestamp: string,
): ConnectionReports {
  const status: ToolInstallationStatus = {
    ...toolStatusBody(record.message, "INSTALLED", null, timestamp),
    connection: liveness.state,
    connectionDetail: liveness.detail,
  };
  if (liveness.state !== "CONNECTED") return { status, connection: null, withheld: null };
  const toolType = openFrameToolType(record.message.toolType);
  if (toolType === null)
    return {
      status,
      connection: null,
      withheld: `its type ${echoInput(record.message.toolType ?? null)} is none of OpenFrame's tool types`,
    };
  return {
    status,
    connection: {
      toolType,
      agentToolId: agentToolId ?? record.toolAgentId,
      state: "CONNECTED",
      checkedAt: timestamp,
      detail: liveness.detail,
    },
    withheld: null,
  };
}
