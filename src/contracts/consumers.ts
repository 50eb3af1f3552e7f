import {
  AGENT_CONFIG_STREAM,
  assertMachineId,
  CONFIG_DEFAULTS_KEY,
  configKeyForMachine,
  configKeySubject,
  fleetSubjects,
} from "./subjects.ts";

/**
 * The JetStream consumers an agent reads its commands through. Each is durable, named after the
 * machine by one fixed template (`machine_{id}_{purpose}_consumer`) and bound to one filter subject
 * (nats-server 2.9 takes one filter per consumer), so a permission set can name every consumer a
 * machine may create, read and ack, and pin its filter: see `src/identity/permissions.ts`.
 *
 * No purpose contains `_`: with machine ids allowed to contain `_`, that is what keeps one machine's
 * consumer names from ever equalling another's.
 */
export interface ConsumerBinding {
  readonly stream: string;
  readonly name: string;
  readonly filterSubject: string;
}

export interface MachineConsumers {
  readonly toolInstallation: ConsumerBinding;
  readonly toolUninstall: ConsumerBinding;
  /** Every tool's fleet-wide update: the agent acks, unread, those for tools it does not have. */
  readonly toolUpdate: ConsumerBinding;
  readonly clientUpdate: ConsumerBinding;
  readonly clientUpdateAll: ConsumerBinding;
  readonly clientUninstall: ConsumerBinding;
  readonly downloadConfiguration: ConsumerBinding;
  readonly downloadConfigurationAll: ConsumerBinding;
  /** The remote configuration keys, read as the KV stream's own messages (no KV watcher: see remote-config). */
  readonly configMachine: ConsumerBinding;
  readonly configDefaults: ConsumerBinding;
}

export const COMMAND_STREAMS = {
  toolInstallation: "TOOL_INSTALLATION",
  toolUpdate: "TOOL_UPDATE",
  clientUpdate: "CLIENT_UPDATE",
  configPush: "CONFIG_PUSH",
  clientUninstall: "CLIENT_UNINSTALL",
} as const;

export function consumerName(machineId: string, purpose: string): string {
  return `machine_${assertMachineId(machineId)}_${purpose}_consumer`;
}

/**
 * The per-tool consumer earlier versions made for `machine.all.tool.{toolAgentId}.update`: only
 * its removal still names it (tools/legacy-update-consumers.ts).
 */
export function legacyUpdateConsumerName(machineId: string, toolAgentId: string): string {
  return `machine_${machineId}_tool_${toolAgentId}_update_consumer`;
}

export function machineConsumers(machineId: string): MachineConsumers {
  const id = assertMachineId(machineId);
  const base = `machine.${id}`;
  const bind = (stream: string, purpose: string, filterSubject: string): ConsumerBinding => ({
    stream,
    name: consumerName(id, purpose),
    filterSubject,
  });
  return {
    toolInstallation: bind(COMMAND_STREAMS.toolInstallation, "tool-installation", `${base}.tool-installation`),
    toolUninstall: bind(COMMAND_STREAMS.toolInstallation, "tool-uninstall", `${base}.tool-uninstall`),
    toolUpdate: bind(COMMAND_STREAMS.toolUpdate, "tool-update", fleetSubjects.toolUpdates),
    clientUpdate: bind(COMMAND_STREAMS.clientUpdate, "client-update", `${base}.client-update`),
    clientUpdateAll: bind(COMMAND_STREAMS.clientUpdate, "client-update-all", fleetSubjects.clientUpdate),
    clientUninstall: bind(COMMAND_STREAMS.clientUninstall, "client-uninstall", `${base}.client-uninstall`),
    downloadConfiguration: bind(COMMAND_STREAMS.configPush, "download-configuration", `${base}.download-configuration`),
    downloadConfigurationAll: bind(
      COMMAND_STREAMS.configPush,
      "download-configuration-all",
      fleetSubjects.downloadConfiguration,
    ),
    configMachine: bind(AGENT_CONFIG_STREAM, "config", configKeySubject(configKeyForMachine(id))),
    configDefaults: bind(AGENT_CONFIG_STREAM, "config-defaults", configKeySubject(CONFIG_DEFAULTS_KEY)),
  };
}
