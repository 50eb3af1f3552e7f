import {
  type DownloadRecord,
  EventType,
  type ToolInstallationMessage,
  type ToolInstallationStatus,
} from "../contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../events/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import { truncateInput } from "../runtime/index.ts";
import { rememberCommand, type ToolRecord, toolStore } from "./tool-state.ts";
import { toolStatusBody } from "./tool-status.ts";

/**
 * What the agent knows of its tools (one record each, beside the tool's folder) and what it tells
 * the platform of them (`tool-installation.status`): the commands, the liveness checks and the
 * file pushes all keep and report their work through this.
 */
export class ToolRecords {
  readonly #store: ReturnType<typeof toolStore>;
  readonly #sink: EventSink;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(options: { toolsDir: string; sink: EventSink; clock: Clock; logger: Logger }) {
    this.#store = toolStore(options.toolsDir);
    this.#sink = options.sink;
    this.#clock = options.clock;
    this.#logger = options.logger;
  }

  read(toolAgentId: string): Promise<ToolRecord | null> {
    return this.#store.read(toolAgentId);
  }

  write(record: ToolRecord): Promise<void> {
    return this.#store.write(record);
  }

  list(): Promise<ToolRecord[]> {
    return this.#store.list();
  }

  /** The time as records and reports write it. */
  now(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  statusBody(
    message: ToolInstallationMessage,
    state: ToolInstallationStatus["state"],
    error: string | null,
    downloads?: readonly DownloadRecord[],
  ): ToolInstallationStatus {
    return toolStatusBody(message, state, error, this.now(), downloads);
  }

  async report(
    message: ToolInstallationMessage,
    state: ToolInstallationStatus["state"],
    error: string | null,
    causationId: string,
    downloads?: readonly DownloadRecord[],
  ): Promise<void> {
    await this.#sink.emit({
      type: EventType.toolInstallationStatus,
      body: this.statusBody(message, state, error, downloads),
      causationId,
    });
  }

  /** `commandId`: the command whose work this record finishes, remembered to recognise it again. */
  save(
    message: ToolInstallationMessage,
    state: ToolRecord["state"],
    error: string | null,
    mainFile: string | null,
    previous: ToolRecord | null,
    commandId: string | null = null,
    downloads: readonly DownloadRecord[] | null = null,
  ): Promise<void> {
    return this.#store.write({
      toolAgentId: message.toolAgentId,
      version: message.version ?? null,
      state,
      error,
      updatedAt: this.now(),
      message,
      mainFile,
      agentToolId: previous?.agentToolId ?? null,
      connection: previous?.connection ?? null,
      commandIds: rememberCommand(previous?.commandIds ?? [], commandId),
      // What is installed: the files of the version that last finished installing.
      downloads: downloads ? [...downloads] : (previous?.downloads ?? []),
    });
  }

  /** Remembers that `causationId`'s work is done, `current` otherwise unchanged. */
  remember(current: ToolRecord, causationId: string): Promise<void> {
    return this.#store.write({ ...current, commandIds: rememberCommand(current.commandIds, causationId) });
  }

  /** True (and logged) when `current` says this command's work already finished. */
  alreadyHandled(current: ToolRecord | null, causationId: string): boolean {
    if (!current?.commandIds.includes(causationId)) return false;
    this.#logger.info(
      { toolAgentId: current.toolAgentId, causationId },
      "command stored again after its work finished: settled without doing it twice",
    );
    return true;
  }

  /**
   * Reports a command on a tool FAILED for good. A failed update leaves the working version in
   * place: its record keeps saying INSTALLED, with the failure as its error.
   */
  async recordFailure(
    message: ToolInstallationMessage,
    current: ToolRecord | null,
    reason: string,
    causationId: string,
  ): Promise<void> {
    if (current?.state === "INSTALLED") {
      const version = truncateInput(message.version ?? "?");
      await this.#store.write({
        ...current,
        error: `update to ${version} failed: ${reason}`,
        updatedAt: this.now(),
        commandIds: rememberCommand(current.commandIds, causationId),
      });
    } else await this.save(message, "FAILED", reason, null, current, causationId);
    await this.report(message, "FAILED", reason, causationId);
  }

  /** The FAILED report of a command refused before its work began (all that is known of it is its tool's name). */
  refusedStatus(toolAgentId: string, reason: string): OutgoingEvent {
    return {
      type: EventType.toolInstallationStatus,
      body: this.statusBody(
        {
          toolAgentId,
          downloadConfigurations: [],
          assets: [],
          installationCommandArgs: [],
          runCommandArgs: [],
          toolAgentIdCommandArgs: [],
          uninstallationCommandArgs: [],
          reinstall: false,
        },
        "FAILED",
        reason,
      ),
    };
  }
}
