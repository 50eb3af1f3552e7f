import type { CapabilityFactory } from "../capability/index.ts";
import { remoteConfigCapability } from "../config/index.ts";
import { configPushCapability } from "../config-push/index.ts";
import type { TaskLedger } from "../outbox/index.ts";
import { rpcCapability } from "../rpc/index.ts";
import { tasksCapability } from "../tasks/index.ts";
import { telemetryCapability } from "../telemetry/index.ts";
import { toolsCapability } from "../tools/index.ts";
import { remoteUninstallCapability, type UninstallAgent } from "../uninstall/index.ts";
import { selfUpdateCapability } from "../update/index.ts";

/** What the list below needs from the agent's dependencies and its outbox. */
export interface CapabilityWiring {
  readonly telemetry: boolean;
  readonly inventoryCommand?: readonly string[] | undefined;
  readonly requestRestart?: ((reason: string) => void) | undefined;
  readonly childEnvironment?: NodeJS.ProcessEnv | undefined;
  /** What runs this agent: the single executable, or the sources with Node (a checkout). */
  readonly runningFrom?: "executable" | "sources" | undefined;
  readonly uninstall?: UninstallAgent | undefined;
  readonly outboxDrained: (timeoutMs: number) => Promise<boolean>;
  /** The remote tasks' record in the outbox's database. */
  readonly taskLedger: TaskLedger;
}

/**
 * The agent's capabilities, one line each, in start order (they stop in the reverse order).
 * Adding a capability: a folder with its factory, and one line here.
 */
export function agentCapabilities(
  wiring: CapabilityWiring,
): Array<{ readonly name: string; readonly create: CapabilityFactory }> {
  const { uninstall } = wiring;
  return [
    // Before telemetry and tools: a version on trial arms its health gate first.
    {
      name: "update",
      create: selfUpdateCapability({
        requestRestart: wiring.requestRestart,
        childEnvironment: wiring.childEnvironment,
        runningFrom: wiring.runningFrom,
      }),
    },
    {
      name: "telemetry",
      create: wiring.telemetry ? telemetryCapability({ inventoryCommand: wiring.inventoryCommand }) : () => null,
    },
    // The last good remote configuration, before the link can bring newer revisions.
    { name: "remote-config", create: remoteConfigCapability },
    { name: "config-push", create: configPushCapability },
    { name: "tools", create: toolsCapability },
    // Without an uninstall, nothing could remove the agent: the command is not listened for.
    {
      name: "uninstall",
      create: uninstall ? remoteUninstallCapability({ uninstall, outboxDrained: wiring.outboxDrained }) : () => null,
    },
    {
      name: "tasks",
      create: tasksCapability({ ledger: wiring.taskLedger, environment: wiring.childEnvironment }),
    },
    // Last: its endpoints are everyone's.
    { name: "rpc", create: rpcCapability },
  ];
}
