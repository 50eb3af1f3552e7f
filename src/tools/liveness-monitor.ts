import { EventType } from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Cancel, Clock, KeyedSerialQueue, Logger } from "../runtime/index.ts";
import { timersOf } from "../runtime/index.ts";
import { checkToolAlive, readAgentToolId } from "./connection-monitor.ts";
import { connectionReports } from "./connection-report.ts";
import { toolDirOf } from "./installer.ts";
import type { ServiceState } from "./service-state.ts";
import type { ToolRecords } from "./tool-records.ts";
import type { ToolRecord } from "./tool-state.ts";

/** The same liveness is reported again after this long (a change goes out at once). */
const REPORT_AGAIN_MS = 3_600_000;

export interface LivenessMonitorOptions {
  readonly toolsDir: string;
  readonly records: ToolRecords;
  /** The tools' lock: a check waits for the tool's command in progress, and holds off the next. */
  readonly lock: KeyedSerialQueue;
  readonly platform: NodeJS.Platform;
  readonly serviceState: (serviceName: string) => Promise<ServiceState>;
  readonly sink: EventSink;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often each installed tool is checked. */
  readonly checkIntervalMs: number;
}

/**
 * Watches every installed tool: whether it runs (its service, or a process from its folder) and
 * its own id (`toolAgentIdCommandArgs`). A change is recorded and reported at once
 * (`tool-installation.status`, and `tool-connection` when OpenFrame can be told), the same state
 * hourly; a failed round is tried again with a growing wait.
 */
export class ToolLivenessMonitor {
  readonly #options: LivenessMonitorOptions;
  /** Last reported liveness per tool, and when. */
  readonly #reported = new Map<string, { state: string; atMs: number }>();
  #cancelCheck: Cancel | null = null;
  #failures = 0;
  #stopped = false;

  constructor(options: LivenessMonitorOptions) {
    this.#options = options;
  }

  /** Checks at once, then every `checkIntervalMs`. */
  start(): void {
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelCheck?.();
  }

  /** A tool was just installed: its id and liveness now, not at the next round (after its install's lock). */
  checkSoon(toolAgentId: string): void {
    this.#reported.delete(toolAgentId);
    void this.checkAll().catch((error: unknown) => this.#options.logger.warn({ err: error }, "tool check failed"));
  }

  async checkAll(): Promise<void> {
    for (const record of await this.#options.records.list()) {
      if (record.state !== "INSTALLED" || this.#stopped) continue;
      await this.#options.lock.run(record.toolAgentId, () => this.#check(record.toolAgentId));
    }
  }

  async #check(toolAgentId: string): Promise<void> {
    const { records, logger, clock, sink } = this.#options;
    const current = await records.read(toolAgentId);
    if (current?.state !== "INSTALLED") return;
    const toolDir = toolDirOf(this.#options.toolsDir, current.toolAgentId);
    const agentToolId = current.agentToolId ?? (await this.#readAgentToolId(current, toolDir));
    const liveness = await checkToolAlive(current, toolDir, this.#options.platform, this.#options.serviceState);
    if (agentToolId !== current.agentToolId || liveness.state !== current.connection) {
      await records.write({ ...current, agentToolId, connection: liveness.state });
    }
    const last = this.#reported.get(current.toolAgentId);
    if (last && last.state === liveness.state && clock.monotonicMs() - last.atMs < REPORT_AGAIN_MS) return;
    const reports = connectionReports(current, liveness, agentToolId, records.now());
    await sink.emit({ type: EventType.toolInstallationStatus, body: reports.status });
    if (reports.connection) await sink.emit({ type: EventType.toolConnection, body: reports.connection });
    else if (reports.withheld)
      logger.warn(
        { toolAgentId: current.toolAgentId },
        `tool runs, but OpenFrame is not told (no tool-connection message): ${reports.withheld}`,
      );
    this.#reported.set(current.toolAgentId, { state: liveness.state, atMs: clock.monotonicMs() });
  }

  #readAgentToolId(record: ToolRecord, toolDir: string): Promise<string | null> {
    return readAgentToolId(record, toolDir).catch((error: unknown) => {
      this.#options.logger.warn({ toolAgentId: record.toolAgentId, err: error }, "cannot read the tool's own id yet");
      return null;
    });
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    const { checkIntervalMs, logger } = this.#options;
    this.#cancelCheck = timersOf(this.#options.clock).after(delayMs, () => {
      this.checkAll()
        .then(() => {
          this.#failures = 0;
          this.#schedule(checkIntervalMs);
        })
        .catch((error: unknown) => {
          this.#failures += 1;
          logger.warn({ err: error }, "tool checks failed; retrying");
          this.#schedule(Math.min(checkIntervalMs * 10, 5_000 * 2 ** Math.min(this.#failures, 6)));
        });
    });
  }
}
