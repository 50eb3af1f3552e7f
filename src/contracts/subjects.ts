import { EdgeError } from "../errors/index.ts";

/**
 * Subject builders. Every token that goes into a subject is checked here, so a machine id such as
 * `a.b`, `*` or `>` can never widen a subscription or publish into another machine's space.
 */

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;

export class UnsafeSubjectTokenError extends EdgeError {
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

/** Machine ids that name fleet-wide subjects (`machine.all.*`): a machine under one would read and answer the fleet's. */
export const RESERVED_MACHINE_IDS: readonly string[] = ["all"];

export class ReservedMachineIdError extends EdgeError {
  readonly code = "EDGE_RESERVED_MACHINE_ID";
  readonly value: string;
  constructor(value: string) {
    super(
      `machineId ${JSON.stringify(value)} is reserved: machine.${value}.* subjects are fleet-wide; give the machine another id`,
    );
    this.name = "ReservedMachineIdError";
    this.value = value;
  }
}

export function isReservedMachineId(value: string): boolean {
  return RESERVED_MACHINE_IDS.includes(value);
}

/** A safe subject token that is not a fleet-wide name; throws a named error otherwise. */
export function assertMachineId(value: string): string {
  assertSafeToken("machineId", value);
  if (isReservedMachineId(value)) throw new ReservedMachineIdError(value);
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
  readonly clientUninstallStatus: string;
  readonly taskOutput: string;
  readonly taskResult: string;
  readonly outboxGauge: string;
  /** Platform -> agent. */
  readonly toolInstallation: string;
  readonly toolUninstall: string;
  readonly clientUpdate: string;
  readonly clientUninstall: string;
  readonly downloadConfiguration: string;
  readonly task: string;
  readonly taskCancel: string;
  readonly rpcHealth: string;
  readonly rpcStatus: string;
  readonly rpcCollect: string;
  readonly rpcConfig: string;
}

export function machineSubjects(machineId: string): MachineSubjects {
  const id = assertMachineId(machineId);
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
    clientUninstallStatus: `${base}.client-uninstall.status`,
    taskOutput: `${base}.task.output`,
    taskResult: `${base}.task.result`,
    outboxGauge: `${base}.outbox`,
    toolInstallation: `${base}.tool-installation`,
    toolUninstall: `${base}.tool-uninstall`,
    clientUpdate: `${base}.client-update`,
    clientUninstall: `${base}.client-uninstall`,
    downloadConfiguration: `${base}.download-configuration`,
    task: `${base}.task`,
    taskCancel: `${base}.task.cancel`,
    rpcHealth: `${base}.rpc.health`,
    rpcStatus: `${base}.rpc.status`,
    rpcCollect: `${base}.rpc.collect`,
    rpcConfig: `${base}.rpc.config`,
  };
}

/** Fleet-wide subjects every agent listens on (read-only to agents). */
export const fleetSubjects = {
  clientUpdate: "machine.all.client-update",
  downloadConfiguration: "machine.all.download-configuration",
  /**
   * Fleet-wide tasks and their cancels: not `machine.all.task`, which `machine.*.task` (the stream of
   * every machine's own tasks) would capture; they have a stream of their own (FLEET_TASKS).
   */
  task: "machine.all.fleet-task",
  taskCancel: "machine.all.fleet-task.cancel",
  /** Every tool's update: one filter, so one consumer per machine covers every tool it has. */
  toolUpdates: "machine.all.tool.*.update",
  toolUpdate(toolAgentId: string): string {
    return `machine.all.tool.${assertSafeToken("toolAgentId", toolAgentId)}.update`;
  },
  /** The tool a `machine.all.tool.{toolAgentId}.update` subject names, or null for any other subject. */
  toolOfUpdate(subject: string): string | null {
    const tokens = subject.split(".");
    if (
      tokens.length !== 5 ||
      tokens[0] !== "machine" ||
      tokens[1] !== "all" ||
      tokens[2] !== "tool" ||
      tokens[4] !== "update"
    )
      return null;
    const toolAgentId = tokens[3] as string;
    return isSafeToken(toolAgentId) ? toolAgentId : null;
  },
} as const;

export const AGENT_CONFIG_BUCKET = "agent-config";
/** The stream behind the bucket, and the subject of one of its keys (JetStream KV's own naming). */
export const AGENT_CONFIG_STREAM = `KV_${AGENT_CONFIG_BUCKET}`;
export function configKeySubject(key: string): string {
  return `$KV.${AGENT_CONFIG_BUCKET}.${key}`;
}
export const SERVICE_NAME = "edge-agent";

export function configKeyForMachine(machineId: string): string {
  return `machine.${assertMachineId(machineId)}`;
}
export const CONFIG_DEFAULTS_KEY = "defaults";

/**
 * The shared inbox root every NATS client uses by default. An agent never uses it: replies to its
 * requests go to an inbox prefix of its own, so no other machine may subscribe where they land.
 */
export const SHARED_INBOX_PREFIX = "_INBOX";

export function defaultInboxPrefix(machineId: string): string {
  return `${SHARED_INBOX_PREFIX}_${assertMachineId(machineId)}`;
}

/** Why `prefix` cannot be an agent's inbox prefix, or null when it can. */
export function inboxPrefixProblem(prefix: string): string | null {
  if (!prefix.split(".").every(isSafeToken))
    return "must be dot-separated tokens of letters, digits, '_' or '-' (no wildcards)";
  if (prefix === SHARED_INBOX_PREFIX || prefix.startsWith(`${SHARED_INBOX_PREFIX}.`)) {
    return `must not be the shared ${SHARED_INBOX_PREFIX} (every client's replies land there); the default is ${SHARED_INBOX_PREFIX}_<machineId>`;
  }
  return null;
}
