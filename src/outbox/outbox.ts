import { join } from "node:path";
import type { Clock, Logger } from "../runtime/index.ts";
import { timersOf } from "../runtime/index.ts";
import { type CommandInbox, createCommandInbox } from "./command-inbox.ts";
import { OutboxDelivery } from "./delivery.ts";
import { HeldEvents } from "./held-events.ts";
import { OutboxIntake, OutboxStorageUnavailableError } from "./intake.ts";
import { OutboxNumbering } from "./numbering.ts";
import { OutboxDatabase } from "./outbox-database.ts";
import { OutboxTally } from "./outbox-tally.ts";
import type { EventPublisher } from "./publisher.ts";
import { OutboxRetention } from "./retention.ts";
import { readBootId } from "./sequence-floor.ts";
import type { Durability, OutboxStore } from "./sqlite-store.ts";
import { createTaskLedger, type TaskLedger } from "./task-ledger.ts";
import type { OutboxEntryInput, OutboxStats, StoredOutboxEntry } from "./types.ts";

export const OUTBOX_FILE = "outbox.db";

export interface OutboxOptions {
  readonly dataDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default 256 MiB. When full, telemetry is evicted first, oldest first; state events last. */
  readonly maxBytes?: number;
  /** Default 7 days: older events are evicted (and counted) whatever their class. */
  readonly maxAgeMs?: number;
  readonly durability?: Durability;
  readonly batchSize?: number;
  readonly maxInFlight?: number;
  /** Bound on events kept in memory while the database cannot be written. Default 64 MiB. */
  readonly maxHeldBytes?: number;
  /** How often to try the disk again after a write failed. Default 5 s. */
  readonly storageRetryMs?: number;
  /** This boot's id (default: Linux's, null elsewhere); tests give another to play a reboot. */
  readonly bootId?: string | null;
}

export interface Outbox {
  /**
   * Accepts the event with the next device sequence: stored per the durability policy, or held in
   * memory while the database cannot be written. Throws `OutboxRefusedError` only when no number
   * can be made safe from reuse (see sequence-floor.ts).
   */
  append(input: OutboxEntryInput): StoredOutboxEntry;
  /** Accepts several events in one transaction (one sync under "full" durability). */
  appendBatch(inputs: readonly OutboxEntryInput[]): StoredOutboxEntry[];
  stats(): OutboxStats;
  /** `stats().pendingCount` without reading the database: for callers that poll many outboxes. */
  pendingCount(): number;
  /** Starts delivering through `publisher`, in the background. */
  start(publisher: EventPublisher): void;
  /** The link is down: deliver nothing until `wake` (drainer.ts says why). */
  hold(): void;
  /** The link is back: retry now. */
  wake(): void;
  /** Stops delivery (in-flight publishes settle first) and closes the database. */
  stop(): Promise<void>;
  updateLimits(limits: { maxBytes?: number; maxAgeMs?: number }): void;
  /** The commands read from the platform, kept in this same database (command-inbox.ts). */
  readonly commands: CommandInbox;
  /** The remote tasks taken on this machine, and cancels kept for tasks to come (task-ledger.ts). */
  readonly tasks: TaskLedger;
}

const AGE_SWEEP_MS = 60_000;

/**
 * The durable outbox: every event but the heartbeat is stored here before anything else happens
 * to it, and leaves only when JetStream acknowledged it. Its parts, each with one job: numbering
 * (numbering.ts, over sequence-floor.ts), taking events in (intake.ts), retention (retention.ts),
 * delivery's side of it (delivery.ts; drainer.ts publishes) and the database's health
 * (outbox-database.ts); sqlite-store.ts says what each durability setting promises.
 *
 * Faults of the disk never crash the agent, never cost an event already accepted, and never hold
 * delivery up:
 * - New events the database cannot take (a full disk) are held in memory (bounded, counted), are
 *   delivered from there meanwhile, and are stored once the disk takes them.
 * - An event JetStream acked is settled at once, in memory, whether or not the database can delete
 *   it now: it is never published again. The deletion is retried; until it succeeds, the sequence
 *   floor file (written in place, so even a full disk takes it) keeps how far everything was
 *   settled, so a kill -9 meanwhile does not send those events again either.
 * - A fault is logged once when it starts and once when it ends, and shown in `stats().lastError`.
 */
export function openOutbox(options: OutboxOptions): Outbox {
  const { clock, logger, dataDir } = options;
  const timers = timersOf(clock);
  const durability = options.durability ?? "normal";
  const tally = new OutboxTally();
  const held = new HeldEvents(options.maxHeldBytes ?? 64 * 1024 * 1024);
  const numbering = new OutboxNumbering({
    dataDir,
    bootId: options.bootId === undefined ? readBootId() : options.bootId,
    durability,
    tally,
    logger,
  });
  const database: OutboxDatabase = new OutboxDatabase({
    path: join(dataDir, OUTBOX_FILE),
    dataDir,
    durability,
    clock,
    timers,
    logger,
    retryMs: options.storageRetryMs ?? 5_000,
    opened: (store) => {
      tally.opened(store);
      delivery.opened(store);
    },
    retry: () => retryStorage(),
  });
  const delivery = new OutboxDelivery({
    database,
    tally,
    held,
    settledByLastRun: () => numbering.settledByLastRun,
    recordSettled: (sequence) => numbering.recordSettled(sequence),
    clock,
    timers,
    logger,
    batchSize: options.batchSize ?? 500,
    maxInFlight: options.maxInFlight ?? 128,
  });
  const retention = new OutboxRetention({
    database,
    tally,
    busyOrSettled: (sequence) => delivery.busyOrSettled(sequence),
    clock,
    logger,
    maxBytes: options.maxBytes ?? 256 * 1024 * 1024,
    maxAgeMs: options.maxAgeMs ?? 7 * 24 * 3600 * 1000,
  });
  const intake = new OutboxIntake({ database, numbering, retention, delivery, tally, held, clock });
  const retryStorage = (): void => {
    // Deleting first: what it frees may be the room the held events need.
    delivery.persist();
    intake.flushHeld();
    if (held.count > 0 || delivery.backlogSize > 0 || tally.countersDirty) database.retryLater();
  };
  const openTables = (): OutboxStore => {
    const store = database.ensureOpen();
    if (!store) throw new OutboxStorageUnavailableError(database.problem ?? "the database is not open");
    return store;
  };
  const commands = createCommandInbox({
    tables: openTables,
    appendDurablyWith: (inputs, also) => intake.appendDurablyWith(inputs, also),
    clock,
  });
  const tasks = createTaskLedger({ tables: openTables, clock });

  numbering.begin(database.open(), (error) =>
    database.fail(
      "outbox cannot write the sequence floor",
      error,
      "events are refused until it can: a number that could be reused is never handed out",
    ),
  );
  delivery.persist();
  retention.sweepExpired();
  const stopSweeping = timers.every(AGE_SWEEP_MS, () => retention.sweepExpired());

  return {
    commands,
    tasks,
    append: (input) => intake.append([input])[0] as StoredOutboxEntry,
    appendBatch: (inputs) => intake.append(inputs),
    stats() {
      let storedOldest: number | null = null;
      try {
        storedOldest = delivery.oldestStoredCreatedAtMs();
      } catch {
        storedOldest = null;
      }
      const heldOldest = held.oldestCreatedAtMs;
      const oldest =
        storedOldest === null ? heldOldest : heldOldest === null ? storedOldest : Math.min(storedOldest, heldOldest);
      const { counters } = tally;
      return {
        pendingCount: tally.pendingCount + held.count,
        pendingBytes: tally.pendingBytes + held.bytes,
        oldestPendingAgeMs: oldest === null ? null : Math.max(0, clock.now() - oldest),
        lastSequence: counters.last_sequence,
        deliveredCount: counters.delivered,
        evictedTelemetry: counters.evicted_telemetry,
        evictedState: counters.evicted_state,
        deadLetters: counters.dead_letters,
        heldInMemory: held.count,
        sequenceSkip: numbering.sequenceSkip,
        lastError: database.problem,
        deliveryProblem: delivery.retryReason,
      };
    },
    start: (publisher) => delivery.start(publisher, numbering.outboxId),
    pendingCount: () => tally.pendingCount + held.count,
    hold: () => delivery.hold(),
    wake: () => delivery.wake(),
    async stop() {
      database.stopRetrying();
      stopSweeping();
      retention.flushLog();
      await delivery.stop();
      retryStorage();
      if (held.count > 0)
        logger.error(
          { lost: held.count, firstSequence: held.firstSequence },
          "outbox stopping with events it could not store: they are lost (their numbers are never reused)",
        );
      if (delivery.backlogSize > 0)
        logger.warn(
          { settled: delivery.backlogSize },
          "outbox stopping before the database took every delivery: the next start skips them",
        );
      let through = 0;
      try {
        through = delivery.settledThrough() ?? 0;
      } catch (error) {
        logger.debug({ err: error }, "cannot tell how far events are settled");
      }
      try {
        numbering.close(through);
      } catch (error) {
        logger.error(
          { err: error },
          "outbox cannot write the sequence floor at stop: the next start leaves a gap in the sequence",
        );
      }
      database.close();
    },
    updateLimits: (limits) => retention.updateLimits(limits),
  };
}
