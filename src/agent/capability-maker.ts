import {
  type Capability,
  type CapabilityDefinition,
  type CapabilitySetting,
  type OutboxCounts,
  ResolvedContributions,
  settingsSlice,
} from "../capability/index.ts";
import type { MachineSubjects } from "../contracts/index.ts";
import type { Clock, LoggerFamily } from "../runtime/index.ts";
import type { Settings } from "../settings/index.ts";
import type { AgentPlumbing } from "./plumbing.ts";

export interface CapabilityMakerOptions {
  readonly settings: Settings;
  readonly machineId: string;
  readonly subjects: MachineSubjects;
  readonly clock: Clock;
  readonly loggers: LoggerFamily;
  readonly plumbing: AgentPlumbing;
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  readonly recordError: (source: string, error: unknown) => void;
}

/**
 * Makes one agent's capabilities, each with its own slice of the settings (what its definition
 * declares, and nothing else) and the agent's plumbing, then resolves what they offer each other:
 * once, after the last is made and before any starts.
 */
export class CapabilityMaker {
  readonly #options: CapabilityMakerOptions;
  readonly #contributions = new ResolvedContributions();

  constructor(options: CapabilityMakerOptions) {
    this.#options = options;
  }

  make<Setting extends CapabilitySetting, Made extends Capability>(
    definition: CapabilityDefinition<Setting, Made>,
  ): Made {
    const { settings, plumbing, loggers } = this.#options;
    return definition.create({
      machineId: this.#options.machineId,
      subjects: this.#options.subjects,
      settings: settingsSlice(settings, definition.settings, definition.name),
      clock: this.#options.clock,
      logger: loggers.child({ component: definition.name }),
      sink: plumbing.sink,
      trust: plumbing.trust,
      commands: plumbing.commands,
      platform: this.#options.platform,
      arch: this.#options.arch,
      contributions: () => this.#contributions.read(),
      readOutboxGauge: () => this.#outboxCounts(),
      recordError: this.#options.recordError,
    });
  }

  /** Every capability is made: what they offer each other is fixed from now on. */
  resolve(capabilities: readonly Capability[]): void {
    this.#contributions.resolve(capabilities);
  }

  #outboxCounts(): OutboxCounts {
    const {
      lastError: _storageError,
      deliveryProblem: _deliveryProblem,
      ...counts
    } = this.#options.plumbing.outbox.stats();
    return counts;
  }
}
