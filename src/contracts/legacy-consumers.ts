import { COMMAND_STREAMS } from "./streams.ts";
import { AGENT_CONFIG_STREAM, assertMachineId, assertSafeToken } from "./subjects.ts";

/**
 * The durable consumers earlier versions of the agent kept on the server for every machine, nine or
 * ten each (and the push consumer OpenFrame's own agent made for tool installations under the same
 * name). An agent of this version reads its commands without them (command-feeds.ts): on its first
 * connection it takes over what each had not acknowledged yet and removes it, once
 * (src/commands/legacy-consumers.ts). Only that removal, and the permission set that allows it,
 * still names them.
 */
export interface LegacyConsumer {
  readonly stream: string;
  readonly name: string;
  /** The feed (command-feeds.ts) whose position takes over the consumer's acknowledged floor. */
  readonly feedKey: string;
}

const PURPOSES: ReadonlyArray<{ purpose: string; stream: string; feedKey: string }> = [
  { purpose: "tool-installation", stream: COMMAND_STREAMS.toolInstallation, feedKey: "tool-installation" },
  { purpose: "tool-uninstall", stream: COMMAND_STREAMS.toolInstallation, feedKey: "tool-uninstall" },
  // One consumer for every tool's fleet-wide update: positions are per tool now, so nothing to take over.
  { purpose: "tool-update", stream: COMMAND_STREAMS.toolUpdate, feedKey: "" },
  { purpose: "client-update", stream: COMMAND_STREAMS.clientUpdate, feedKey: "client-update" },
  { purpose: "client-update-all", stream: COMMAND_STREAMS.clientUpdate, feedKey: "client-update-all" },
  { purpose: "client-uninstall", stream: COMMAND_STREAMS.clientUninstall, feedKey: "client-uninstall" },
  { purpose: "download-configuration", stream: COMMAND_STREAMS.configPush, feedKey: "download-configuration" },
  {
    purpose: "download-configuration-all",
    stream: COMMAND_STREAMS.configPush,
    feedKey: "download-configuration-all",
  },
  { purpose: "config", stream: AGENT_CONFIG_STREAM, feedKey: "config-machine" },
  { purpose: "config-defaults", stream: AGENT_CONFIG_STREAM, feedKey: "config-defaults" },
];

/** The consumers earlier versions made for this machine, `machine_{id}_{purpose}_consumer`. */
export function legacyMachineConsumers(machineId: string): LegacyConsumer[] {
  const id = assertMachineId(machineId);
  return PURPOSES.map(({ purpose, stream, feedKey }) => ({
    stream,
    name: `machine_${id}_${purpose}_consumer`,
    feedKey,
  }));
}

/** The per-tool update consumer versions before those made, for `machine.all.tool.{toolAgentId}.update`. */
export function legacyToolUpdateConsumer(machineId: string, toolAgentId: string): LegacyConsumer {
  return {
    stream: COMMAND_STREAMS.toolUpdate,
    name: `machine_${assertMachineId(machineId)}_tool_${assertSafeToken("toolAgentId", toolAgentId)}_update_consumer`,
    feedKey: "",
  };
}
