/**
 * Subject builders. Every token that goes into a subject is checked here, so a machine id such as
 * `a.b`, `*` or `>` can never widen a subscription or publish into another machine's space.
 */

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;

export class UnsafeSubjectTokenError extends Error {
  readonly code = "EDGE_UNSAFE_SUBJECT_TOKEN";
  readonly what: string;
  readonly value: string;
  constructor(what: string, value: string) {
    super(`${what} ${JSON.stringify(value)} is not a safe subject token: use only letters, digits, '_' and '-'`);
    this.name = "UnsafeSubjectTokenError";
    this.what = what;
    this.value = value;
  }
}

export function isSafeToken(value: string): boolean {
  return SAFE_TOKEN.test(value);
}

export function assertSafeToken(what: string, value: string): string {
  if (!isSafeToken(value)) throw new UnsafeSubjectTokenError(what, value);
  return value;
}

/** Agent -> platform subjects for one machine. Built once per agent: no work on the hot path. */
export interface MachineSubjects {
  readonly installedAgent: string;
  readonly clientConnection: string;
  readonly heartbeat: string;
  readonly hostname: string;
  readonly telemetry: string;
  readonly inventory: string;
  readonly toolInstallationStatus: string;
  readonly toolConnection: string;
  readonly configStatus: string;
  readonly clientUpdateStatus: string;
  readonly outboxGauge: string;
  /** Platform -> agent. */
  readonly toolInstallation: string;
  readonly toolUninstall: string;
  readonly clientUpdate: string;
  readonly clientUninstall: string;
  readonly downloadConfiguration: string;
  readonly rpcHealth: string;
  readonly rpcStatus: string;
  readonly rpcCollect: string;
  readonly rpcConfig: string;
  readonly toolInstallationConsumer: string;
}

export function machineSubjects(machineId: string): MachineSubjects {
  const id = assertSafeToken("machineId", machineId);
  const base = `machine.${id}`;
  return {
    installedAgent: `${base}.installed-agent`,
    clientConnection: `${base}.client-connection`,
    heartbeat: `${base}.heartbeat`,
    hostname: `${base}.hostname`,
    telemetry: `${base}.telemetry`,
    inventory: `${base}.inventory`,
    toolInstallationStatus: `${base}.tool-installation.status`,
    toolConnection: `${base}.tool-connection`,
    configStatus: `${base}.config.status`,
    clientUpdateStatus: `${base}.client-update.status`,
    outboxGauge: `${base}.outbox`,
    toolInstallation: `${base}.tool-installation`,
    toolUninstall: `${base}.tool-uninstall`,
    clientUpdate: `${base}.client-update`,
    clientUninstall: `${base}.client-uninstall`,
    downloadConfiguration: `${base}.download-configuration`,
    rpcHealth: `${base}.rpc.health`,
    rpcStatus: `${base}.rpc.status`,
    rpcCollect: `${base}.rpc.collect`,
    rpcConfig: `${base}.rpc.config`,
    toolInstallationConsumer: `machine_${id}_tool-installation_consumer`,
  };
}

/** Fleet-wide subjects every agent listens on. */
export const fleetSubjects = {
  clientUpdate: "machine.all.client-update",
  downloadConfiguration: "machine.all.download-configuration",
  toolUpdate(toolAgentId: string): string {
    return `machine.all.tool.${assertSafeToken("toolAgentId", toolAgentId)}.update`;
  },
} as const;

export const AGENT_CONFIG_BUCKET = "agent-config";
export const SERVICE_NAME = "edge-agent";

export function configKeyForMachine(machineId: string): string {
  return `machine.${assertSafeToken("machineId", machineId)}`;
}
export const CONFIG_DEFAULTS_KEY = "defaults";
