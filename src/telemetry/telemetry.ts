import type { OutboxCounts } from "../capability/index.ts";
import {
  EventType,
  type Inventory,
  type OutboxGauge,
  type TelemetrySample,
  tagKeyValuesOf,
} from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Logger } from "../runtime/index.ts";
import { type Clock, timersOf } from "../runtime/index.ts";
import { agentCollectors } from "./agent-collectors.ts";
import type { Collector } from "./collector.ts";
import { collectInventory, type InventoryCollector } from "./inventory.ts";
import { type JitteredSchedule, startJitteredSchedule, validateCronExpression } from "./jittered-schedule.ts";
import { linuxCollectors } from "./linux-collectors.ts";
import { portableCollectors } from "./portable-collectors.ts";
import { createSampler } from "./sampler.ts";

export interface TelemetryOptions {
  readonly machineId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  /** node-cron expression, seconds field allowed. */
  readonly telemetrySchedule: string;
  /** When to check the inventory for changes (it is sent on change, and at least daily). */
  readonly inventorySchedule: string;
  /** Spread of a fleet's runs after each tick: at most this, and at most half the interval. Default 30 s. */
  readonly jitterMs?: number;
  readonly collectorTimeoutMs?: number;
  /** The outbox's counts, read-only: reported with each sample on `machine.{id}.outbox`. */
  readonly outboxGauge?: () => OutboxCounts | null;
  readonly tags?: Readonly<Record<string, string>>;
  /** Replaces the platform's collectors (tests). */
  readonly collectors?: readonly Collector[];
  /** The host's platform (injected: a simulated agent may pose as another OS); picks the collectors. */
  readonly platform: NodeJS.Platform;
  /** How an inventory is gathered (default: in this process; the daemon runs a child). */
  readonly collectInventory?: InventoryCollector;
}

export interface TelemetryStats {
  readonly samples: number;
  readonly skippedOverlaps: number;
  readonly missedRuns: number;
  readonly inventoriesSent: number;
  readonly lastError: string | null;
}

export interface Telemetry {
  start(): Promise<void>;
  stop(): void;
  /** A fresh sample, not emitted (for `rpc.collect`). */
  collectNow(): Promise<TelemetrySample>;
  /** Takes new schedules or tags live; a bad cron expression throws and changes nothing. */
  reconfigure(next: {
    telemetrySchedule?: string;
    inventorySchedule?: string;
    tags?: Readonly<Record<string, string>>;
  }): void;
  stats(): TelemetryStats;
}

const DAY_MS = 24 * 3600 * 1000;

export function createTelemetry(options: TelemetryOptions): Telemetry {
  const { clock, logger, sink, machineId, platform } = options;
  let telemetrySchedule = options.telemetrySchedule;
  let inventorySchedule = options.inventorySchedule;
  let tags = { ...(options.tags ?? {}) };
  const tagKeyValues = (): string[] => tagKeyValuesOf(tags);
  const collectors = options.collectors ?? [
    ...(platform === "linux" ? linuxCollectors({ clock }) : portableCollectors({ clock })),
    ...agentCollectors({ clock, outboxGauge: options.outboxGauge }),
  ];
  const sampler = createSampler({
    machineId,
    clock,
    collectors,
    timeoutMs: options.collectorTimeoutMs ?? 10_000,
    tagKeyValues,
  });
  const gatherInventory = options.collectInventory ?? collectInventory;
  const jitter = { key: machineId, maxMs: options.jitterMs ?? 30_000 };

  let samples = 0;
  let inventoriesSent = 0;
  let lastError: string | null = null;
  let lastInventory: { hash: string; sentAtMs: number } | null = null;
  let telemetryTask: JitteredSchedule | null = null;
  let inventoryTask: JitteredSchedule | null = null;
  let retired = { skippedOverlaps: 0, missedRuns: 0 };

  const fail = (what: string, error: unknown): void => {
    lastError = `${what}: ${error instanceof Error ? error.message : String(error)}`;
    logger.error({ err: error }, `telemetry: ${what}`);
  };

  const emitSample = async (): Promise<void> => {
    try {
      const sample = await sampler.sample();
      if (sample.errors.length > 0) logger.warn({ errors: sample.errors }, "some telemetry collectors failed");
      await sink.emit({ type: EventType.telemetry, body: sample });
      samples += 1;
      const counts = options.outboxGauge?.();
      if (counts) {
        const gauge: OutboxGauge = { machineId, timestamp: sample.timestamp, ...counts };
        await sink.emit({ type: EventType.outboxGauge, body: gauge });
      }
    } catch (error) {
      fail("sample failed", error);
    }
  };

  const checkInventory = async (force: boolean): Promise<void> => {
    try {
      const inventory: Inventory = await gatherInventory({ machineId, clock, tagKeyValues: tagKeyValues(), platform });
      const stale = lastInventory === null || clock.now() - lastInventory.sentAtMs >= DAY_MS;
      if (!force && !stale && lastInventory?.hash === inventory.hash) return;
      await sink.emit({ type: EventType.inventory, body: inventory });
      inventoriesSent += 1;
      if (lastInventory && lastInventory.hash !== inventory.hash)
        logger.info({ hash: inventory.hash }, "inventory changed");
      lastInventory = { hash: inventory.hash, sentAtMs: clock.now() };
    } catch (error) {
      fail("inventory failed", error);
    }
  };

  const onSkip = (reason: "overlap" | "missed"): void => {
    logger.warn(
      { reason },
      reason === "overlap"
        ? "telemetry run skipped: the previous one is still going"
        : "telemetry run missed: the process was too busy to fire on time",
    );
  };

  const schedule = (): void => {
    telemetryTask?.stop();
    inventoryTask?.stop();
    telemetryTask = startJitteredSchedule({
      expression: telemetrySchedule,
      jitter,
      work: emitSample,
      onSkip,
      timers: timersOf(clock),
    });
    inventoryTask = startJitteredSchedule({
      expression: inventorySchedule,
      jitter,
      work: () => checkInventory(false),
      onSkip,
      timers: timersOf(clock),
    });
  };

  const retire = (): void => {
    for (const task of [telemetryTask, inventoryTask]) {
      if (!task) continue;
      retired = {
        skippedOverlaps: retired.skippedOverlaps + task.counters.skippedOverlaps,
        missedRuns: retired.missedRuns + task.counters.missedRuns,
      };
      task.stop();
    }
    telemetryTask = null;
    inventoryTask = null;
  };

  return {
    async start() {
      validateCronExpression(telemetrySchedule);
      validateCronExpression(inventorySchedule);
      // A first reading now, so the first scheduled sample already has rates.
      await sampler.sample().catch((error: unknown) => fail("baseline sample failed", error));
      schedule();
      void checkInventory(true);
    },
    stop() {
      retire();
    },
    collectNow: () => sampler.sample(),
    reconfigure(next) {
      if (next.telemetrySchedule !== undefined) validateCronExpression(next.telemetrySchedule);
      if (next.inventorySchedule !== undefined) validateCronExpression(next.inventorySchedule);
      const tagsChanged = next.tags !== undefined && JSON.stringify(next.tags) !== JSON.stringify(tags);
      if (next.tags !== undefined) tags = { ...next.tags };
      const scheduleChanged =
        (next.telemetrySchedule !== undefined && next.telemetrySchedule !== telemetrySchedule) ||
        (next.inventorySchedule !== undefined && next.inventorySchedule !== inventorySchedule);
      telemetrySchedule = next.telemetrySchedule ?? telemetrySchedule;
      inventorySchedule = next.inventorySchedule ?? inventorySchedule;
      if (scheduleChanged && telemetryTask) {
        retire();
        schedule();
      }
      // Tags are part of the inventory (MachinePinotMessage's tags come from it): send it now, not
      // at the next scheduled check, so the platform sees a machine's new tags at once.
      if (tagsChanged && telemetryTask) void checkInventory(false);
    },
    stats() {
      const live = [telemetryTask, inventoryTask].filter((task) => task !== null);
      return {
        samples,
        inventoriesSent,
        skippedOverlaps: retired.skippedOverlaps + live.reduce((sum, task) => sum + task.counters.skippedOverlaps, 0),
        missedRuns: retired.missedRuns + live.reduce((sum, task) => sum + task.counters.missedRuns, 0),
        lastError,
      };
    },
  };
}
