import type { NatsConnection } from "@nats-io/transport-node";
import type { AgentConfiguration, DownloadConfiguration, MachineSubjects, OutboxGauge } from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";
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
 * One capability of the agent (telemetry, remote configuration, tools, self-update, ...) as it runs,
 * behind the one interface the agent wires: the agent makes the list, and loops over it to start,
 * attach, detach, stop and report. Nothing in a capability names another capability: what they
 * share goes through what each offers (appliers, pushed-file targets, rpc endpoints), fixed when it
 * is made; its commands go to the desk while it is made, so the desk knows them all before any is taken.
 */
export interface Capability {
  /** The name its status shows under (`capabilities.<name>`); default its definition's. */
  readonly name?: string;
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
 * Settings no capability reads: the NATS credentials and TLS files (only transport and the CLI see
 * them), and the machine id and inbox prefix as given (the agent resolves them; a capability gets
 * the resolved `machineId` and `subjects`).
 */
export const AGENT_ONLY_SETTINGS = ["auth", "tls", "machineId", "inboxPrefix"] as const;
export type AgentOnlySetting = (typeof AGENT_ONLY_SETTINGS)[number];
/** A setting a capability may declare in its slice. */
export type CapabilitySetting = Exclude<keyof Settings, AgentOnlySetting>;
/** The settings one capability declared, and nothing else (a copy: it cannot change the agent's). */
export type SettingsSlice<Setting extends CapabilitySetting> = Readonly<Pick<Settings, Setting>>;

/** What every capability offers the others, resolved once every capability is made. */
export interface Contributions {
  readonly appliers: readonly ConfigApplier[];
  readonly pushedFileTargets: readonly PushedFileTarget[];
  readonly rpcEndpoints: readonly RpcEndpoint[];
}

/**
 * What a capability is made with: the agent's identity and plumbing, and the settings it declared,
 * all injected (no capability reads `process.*`). `Setting`: the keys of its slice; reading any
 * other setting does not compile.
 */
export interface CapabilityContext<Setting extends CapabilitySetting = never> {
  readonly machineId: string;
  readonly subjects: MachineSubjects;
  /** The settings the capability declared (CapabilityDefinition.settings), as the agent started with them. */
  readonly settings: SettingsSlice<Setting>;
  readonly clock: Clock;
  /** This capability's own logger, a child of this agent's root logger. */
  readonly logger: Logger;
  readonly sink: EventSink;
  readonly trust: CommandTrust;
  /** Where the capability registers the platform commands it takes (src/commands/), while it is made. */
  readonly commands: CommandDesk;
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  /**
   * What every capability offers (its own included), for the work it does once running: resolved
   * after the whole list is made and before any capability starts. Called while the capabilities
   * are still being made, it throws (CapabilityWiringError), never answering with a partial list.
   */
  contributions(): Contributions;
  /** The outbox's counts, read-only (telemetry reports them on `machine.{id}.outbox`). */
  readOutboxGauge(): OutboxCounts;
  /** Records an error for `status.lastErrors` (and the caller logs it). */
  recordError(source: string, error: unknown): void;
}

/**
 * A capability as the agent's list holds it: its name, the settings it reads (its slice, declared
 * here so the agent hands it these and no others) and how it is made. Adding a capability to the
 * agent is a folder exporting one of these, and one line in src/agent/capabilities.ts.
 */
export interface CapabilityDefinition<
  Setting extends CapabilitySetting = CapabilitySetting,
  Made extends Capability = Capability,
> {
  /** Its name in the list (and in the agent's logs as `component`). */
  readonly name: string;
  readonly settings: readonly Setting[];
  /**
   * Makes it. Nothing it makes may run yet (`start` does). A property, not a method: a `create` that
   * reads more than `settings` lists does not compile.
   */
  readonly create: (context: CapabilityContext<NoInfer<Setting>>) => Made;
}

/** A capability definition, its settings slice inferred from the keys it lists. */
export function defineCapability<const Setting extends CapabilitySetting, Made extends Capability>(
  definition: CapabilityDefinition<Setting, Made>,
): CapabilityDefinition<Setting, Made> {
  return definition;
}

/** A capability asked for what the agent does not give it, or read the contributions too early: a wiring mistake. */
export class CapabilityWiringError extends EdgeError {
  readonly code = "EDGE_CAPABILITY_WIRING";
}

/**
 * The settings `keys` name, copied out of `settings` and frozen: all a capability is given. Refuses
 * a setting no capability may read (a JavaScript caller is not stopped by the types).
 */
export function settingsSlice<Setting extends CapabilitySetting>(
  settings: Settings,
  keys: readonly Setting[],
  capability: string,
): SettingsSlice<Setting> {
  const slice: Partial<Record<CapabilitySetting, unknown>> = {};
  for (const key of keys) {
    if ((AGENT_ONLY_SETTINGS as readonly string[]).includes(key) || !(key in settings))
      throw new CapabilityWiringError(
        `capability ${capability} declares the setting ${JSON.stringify(key)}, which no capability is given (credentials, identity and unknown names are not)`,
      );
    slice[key] = settings[key];
  }
  return Object.freeze(slice) as SettingsSlice<Setting>;
}

/**
 * Every capability's contributions, resolved once: the agent calls `resolve` after the whole list is
 * made and before any capability starts; `read` before that throws, so nothing runs on a partial list.
 */
export class ResolvedContributions {
  #resolved: Contributions | null = null;

  resolve(capabilities: readonly Capability[]): void {
    if (this.#resolved) throw new CapabilityWiringError("the capabilities' contributions are resolved once");
    this.#resolved = Object.freeze({
      appliers: Object.freeze(capabilities.flatMap((capability) => capability.appliers ?? [])),
      pushedFileTargets: Object.freeze(capabilities.flatMap((capability) => capability.pushedFileTargets ?? [])),
      rpcEndpoints: Object.freeze(capabilities.flatMap((capability) => capability.rpcEndpoints ?? [])),
    });
  }

  read(): Contributions {
    if (!this.#resolved)
      throw new CapabilityWiringError(
        "a capability read the others' contributions while the capabilities were being made: read them once it runs (start, attach, a command)",
      );
    return this.#resolved;
  }
}
