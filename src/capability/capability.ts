import type { NatsConnection } from "@nats-io/transport-node";
import type { AgentConfiguration, DownloadConfiguration, MachineSubjects, OutboxGauge } from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import type { Settings } from "../settings/index.ts";
import type { RpcEndpointHandler } from "../transport/index.ts";
import type { CommandTrust } from "../trust/index.ts";
import type { CommandDesk } from "./command-handler.ts";

/** The outbox gauge's counts: what the outbox says of itself, without whom and when. */
export type OutboxCounts = Omit<OutboxGauge, "machineId" | "timestamp">;

/**
 * One part of the agent that takes live settings (heartbeat, telemetry schedules, outbox limits,
 * log level, tool policy). A capability declares its own; remote configuration applies them all.
 */
export interface ConfigApplier {
  readonly name: string;
  /** Takes `next`; throws to refuse it. Must accept `previous` again when asked to roll back. */
  apply(next: AgentConfiguration, previous: AgentConfiguration): Promise<void> | void;
}

/** What a capability that takes pushed files says happened to one. */
export type PushedFileOutcome =
  /** Taken: the push reports APPLIED. */
  | "applied"
  /** The target reported the outcome itself (a configuration document reports its own revision). */
  | "reported";

/**
 * A capability that takes files pushed with `download-configuration` (a `.json` configuration
 * document, a file for an installed tool's folder). The config-push capability downloads and
 * checks the file, then hands it to the first target that accepts its name.
 */
export interface PushedFileTarget {
  readonly name: string;
  /** Whether `agentFileName` names a file for this target. */
  accepts(agentFileName: string): boolean;
  /** Takes the downloaded file; throws a clear error to refuse it (reported REJECTED). */
  receive(file: string, entry: DownloadConfiguration, causationId: string): Promise<PushedFileOutcome>;
}

/** One request/reply endpoint (`machine.{id}.rpc.<name>`). */
export type RpcEndpoint = RpcEndpointHandler;

/** The link as a capability sees it when it comes up. */
export interface LinkUp {
  readonly connection: NatsConnection;
  readonly server: string;
  /** False the first time the link comes up in this run. */
  readonly reconnected: boolean;
}

/**
 * One capability of the agent (telemetry, remote configuration, tools, self-update, ...) behind
 * the one interface the agent wires: the agent builds the list, and loops over it to start,
 * attach, detach, stop and report. Nothing in a capability names another capability: what they
 * share goes through the contributions below (appliers, pushed-file targets, rpc endpoints).
 */
export interface Capability {
  readonly name: string;
  /** Work that needs no link (state from disk, schedules); in list order. */
  start?(): Promise<void>;
  /** The link is up: the first time and after every reconnect. */
  attach?(link: LinkUp): void | Promise<void>;
  /** The link went down (it comes back by itself). */
  detach?(server: string, reason: string): void;
  /** Stops; in reverse list order, with the outbox still open for the results it stores. */
  stop?(): Promise<void> | void;
  /** What `status` shows of it under `capabilities.<name>`; absent: nothing. */
  status?(): unknown | Promise<unknown>;
  readonly appliers?: readonly ConfigApplier[];
  readonly pushedFileTargets?: readonly PushedFileTarget[];
  readonly rpcEndpoints?: readonly RpcEndpoint[];
}

/**
 * What every capability is made with: the agent's identity, settings and plumbing, all injected
 * (no capability reads `process.*`), and the contributions of the others, filled once the list is built.
 */
export interface CapabilityContext {
  readonly machineId: string;
  readonly subjects: MachineSubjects;
  readonly settings: Settings;
  readonly clock: Clock;
  /** This capability's own logger, a child of this agent's root logger. */
  readonly logger: Logger;
  readonly sink: EventSink;
  readonly trust: CommandTrust;
  /** Where the capability registers the platform commands it takes (src/commands/). */
  readonly commands: CommandDesk;
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  readonly contributions: Contributions;
  /** The outbox's counts, read-only (telemetry reports them on `machine.{id}.outbox`). */
  readOutboxGauge(): OutboxCounts;
  /** Records an error for `status.lastErrors` (and the caller logs it). */
  recordError(source: string, error: unknown): void;
}

/** The capabilities' contributions, gathered once the list is built (read at run time, never at build time). */
export interface Contributions {
  readonly appliers: readonly ConfigApplier[];
  readonly pushedFileTargets: readonly PushedFileTarget[];
  readonly rpcEndpoints: readonly RpcEndpoint[];
}

/** A capability's factory: the one line of wiring a new capability adds to the agent's list. */
export type CapabilityFactory = (context: CapabilityContext) => Capability | null;

/**
 * The contributions, empty until `gather` fills them once the list is built: a capability holds
 * this object from its construction, and reads it only when it runs.
 */
export class GatheredContributions implements Contributions {
  readonly appliers: ConfigApplier[] = [];
  readonly pushedFileTargets: PushedFileTarget[] = [];
  readonly rpcEndpoints: RpcEndpoint[] = [];

  gather(capabilities: readonly Capability[]): void {
    for (const capability of capabilities) {
      this.appliers.push(...(capability.appliers ?? []));
      this.pushedFileTargets.push(...(capability.pushedFileTargets ?? []));
      this.rpcEndpoints.push(...(capability.rpcEndpoints ?? []));
    }
  }
}
