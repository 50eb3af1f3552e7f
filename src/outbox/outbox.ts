import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import { EdgeError } from "../errors/index.ts";
import type { Logger } from "../runtime/index.ts";
import {
  type Cancel,
  type Clock,
  damagedFileName,
  FaultLatch,
  makePrivateDir,
  SqliteResult,
  sqliteResultCode,
  timersOf,
} from "../runtime/index.ts";
import { type CommandInbox, createCommandInbox } from "./command-inbox.ts";
import { type Drainer, type DrainSource, startDrainer } from "./drainer.ts";
import { HeldEvents } from "./held-events.ts";
import type { EventPublisher } from "./publisher.ts";
import { outboxIdFor, readBootId, restartSequence, SequenceFloor } from "./sequence-floor.ts";
import { SettleBacklog } from "./settle-backlog.ts";
import { type CounterName, type Durability, OutboxStore, sizeOf } from "./sqlite-store.ts";
import { createTaskLedger, type TaskLedger } from "./task-ledger.ts";
import type { OutboxEntryInput, OutboxStats, StoredOutboxEntry } from "./types.ts";

export const OUTBOX_FILE = "outbox.db";
export const SEQUENCE_FLOOR_FILE = "outbox.sequence";

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
  /** Starts delivering through `publisher`, in the background. */
  start(publisher: EventPublisher): void;
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

/** The database cannot be written right now (a full or failing disk): what needed it waits and is tried again. */
export class OutboxStorageUnavailableError extends EdgeError {
  readonly code = "EDGE_OUTBOX_STORAGE_UNAVAILABLE";
  constructor(reason: string) {
    super(`the outbox database cannot be written now: ${reason}`);
    this.name = "OutboxStorageUnavailableError";
  }
}

/** The event was not accepted: it has no sequence number and is not in the outbox. */
export class OutboxRefusedError extends EdgeError {
  readonly code = "EDGE_OUTBOX_REFUSED";
  constructor(count: number, cause: unknown) {
    super(
      `outbox refused ${count} event(s): no sequence number can be made safe from reuse (${cause instanceof Error ? cause.message : String(cause)})`,
      { cause },
    );
    this.name = "OutboxRefusedError";
  }
}

const AGE_SWEEP_MS = 60_000;
const HELD = "events are kept in memory (and delivered from there) and writing is retried";

/**
 * The durable outbox: every event but the heartbeat is stored here before anything else happens
 * to it, and leaves only when JetStream acknowledged it (see sqlite-store.ts for what each
 * durability setting promises, drainer.ts for delivery, sequence-floor.ts for numbering).
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
  const batchSize = options.batchSize ?? 500;
  const maxInFlight = options.maxInFlight ?? 128;
  let maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  let maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  const path = join(dataDir, OUTBOX_FILE);
  const bootId = options.bootId === undefined ? readBootId() : options.bootId;
  const floor = new SequenceFloor(join(dataDir, SEQUENCE_FLOOR_FILE), bootId);
  const lastRun = floor.read();
  const storage = new FaultLatch(logger, clock);
  const held = new HeldEvents(options.maxHeldBytes ?? 64 * 1024 * 1024);
  const backlog = new SettleBacklog();

  let store: OutboxStore | null = null;
  let openedOnce = false;
  const counters: Record<CounterName, number> = {
    last_sequence: 0,
    delivered: 0,
    evicted_telemetry: 0,
    evicted_state: 0,
    dead_letters: 0,
  };
  /** Counters moved in memory that the database has not been told yet. */
  let countersDirty = false;
  /** Stored events not settled yet (the backlog's are settled). */
  let pendingCount = 0;
  let pendingBytes = 0;
  /** Every stored event up to this sequence is settled: the search for the next batch starts after it. */
  let scanFrom = 0;
  let drainer: Drainer | null = null;
  let cancelRetry: Cancel | null = null;
  let stopped = false;
  const inFlight = new Set<number>();
  const busyOrSettled = (sequence: number): boolean => inFlight.has(sequence) || backlog.has(sequence);

  const setAside = (reason: unknown): void => {
    const aside = damagedFileName(path, () => clock.now());
    for (const suffix of ["", "-wal", "-shm"]) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    logger.error(
      { err: reason, setAside: aside },
      "outbox database is damaged: set aside for inspection, starting a new one",
    );
  };

  /** Stored events the last run saw settled but could not delete: settled now, deleted when the disk allows. */
  const settleFromLastRun = (opened: OutboxStore): void => {
    if (floor.settledThrough === 0) return;
    const rows = opened.sequencesThrough(floor.settledThrough);
    for (const row of rows) {
      backlog.addDelivered(row.sequence);
      pendingCount -= 1;
      pendingBytes -= row.sizeBytes;
    }
    counters.delivered += rows.length;
    countersDirty ||= rows.length > 0;
  };

  /** Opens the database; says whether it is the one the last run wrote ("kept"). */
  const tryOpen = (): "kept" | "lost" | "unavailable" => {
    try {
      makePrivateDir(dataDir);
      let fate: "kept" | "lost" = existsSync(path) ? "kept" : "lost";
      let opened: OutboxStore;
      try {
        opened = new OutboxStore(path, durability);
      } catch (error) {
        const code = sqliteResultCode(error);
        if (code !== SqliteResult.corrupt && code !== SqliteResult.notADatabase) throw error;
        setAside(error);
        fate = "lost";
        opened = new OutboxStore(path, durability);
      }
      // Commands the last run left running were cut short by a crash: once per run, before any runs again.
      if (!openedOnce) opened.commands.markInterrupted();
      openedOnce = true;
      const stored = opened.readCounters();
      for (const name of Object.keys(counters) as CounterName[])
        counters[name] = Math.max(counters[name], stored[name]);
      const totals = opened.pendingTotals();
      pendingCount = totals.count;
      pendingBytes = totals.bytes;
      scanFrom = 0;
      settleFromLastRun(opened);
      store = opened;
      return fate;
    } catch (error) {
      storage.fail("outbox cannot open the database", error, HELD);
      return "unavailable";
    }
  };
  const isOpen = (): boolean => store !== null || tryOpen() !== "unavailable";

  const noteStorageWorked = (): void => {
    if (store && held.count === 0 && backlog.size === 0)
      storage.recover("outbox storage is writable again: nothing is left only in memory");
  };

  /** The oldest stored events not settled yet, at most `limit`. */
  const unsettledStored = (open: OutboxStore, limit: number): StoredOutboxEntry[] => {
    const found: StoredOutboxEntry[] = [];
    // Pages larger than asked only when settled events may have to be skipped.
    const pageSize = backlog.size === 0 ? limit : Math.max(limit, 64);
    let cursor = scanFrom;
    let settledPrefix = true;
    // Bounded: each page moves the cursor on through a finite table.
    for (;;) {
      const page = open.batchAfter(cursor, pageSize);
      for (const entry of page) {
        if (backlog.has(entry.sequence)) {
          if (settledPrefix) scanFrom = entry.sequence;
          continue;
        }
        settledPrefix = false;
        found.push(entry);
        if (found.length === limit) return found;
      }
      const last = page.at(-1);
      if (page.length < pageSize || !last) return found;
      cursor = last.sequence;
    }
  };

  /** The highest sequence up to which every event has left the outbox; null when the database cannot tell. */
  const settledThrough = (): number | null => {
    if (!store) return null;
    const firsts = [unsettledStored(store, 1)[0]?.sequence, held.firstSequence, backlog.lowestRejected()].filter(
      (sequence) => typeof sequence === "number",
    );
    return firsts.length === 0 ? counters.last_sequence : Math.min(...firsts) - 1;
  };

  /** Tells the database what was settled; when it cannot take it, keeps it in memory and retries. */
  const persistBacklog = (): void => {
    if (!store || (backlog.size === 0 && !countersDirty)) return;
    try {
      store.settle(backlog.delivered(), backlog.rejected(), counters, clock.now());
      backlog.clear();
      countersDirty = false;
      noteStorageWorked();
    } catch (error) {
      storage.fail("outbox cannot delete delivered events", error, HELD);
      try {
        const through = settledThrough();
        if (through !== null) floor.recordSettled(through);
      } catch (floorError) {
        logger.debug({ err: floorError }, "cannot note in the sequence floor how far events are settled");
      }
      scheduleRetry();
    }
  };

  const evict = (
    victims: ReadonlyArray<{ sequence: number; eventClass: "telemetry" | "state"; sizeBytes: number }>,
    why: string,
  ): void => {
    if (!store || victims.length === 0) return;
    const next = { ...counters };
    for (const victim of victims) next[victim.eventClass === "telemetry" ? "evicted_telemetry" : "evicted_state"] += 1;
    store.evict(
      victims.map((victim) => victim.sequence),
      next,
    );
    counters.evicted_telemetry = next.evicted_telemetry;
    counters.evicted_state = next.evicted_state;
    pendingCount -= victims.length;
    pendingBytes -= victims.reduce((sum, victim) => sum + victim.sizeBytes, 0);
    logger.warn({ evicted: victims.length, why, firstSequence: victims[0]?.sequence }, "outbox evicted events");
  };

  /** Frees room for `incoming` bytes: oldest telemetry first, then oldest state events. */
  const makeRoom = (incoming: number): void => {
    if (!store) return;
    for (const eventClass of ["telemetry", "state"] as const) {
      while (pendingBytes + incoming > maxBytes) {
        const candidates = store.oldestOfClass(eventClass, 256).filter((row) => !busyOrSettled(row.sequence));
        if (candidates.length === 0) break;
        const victims: Array<{ sequence: number; eventClass: "telemetry" | "state"; sizeBytes: number }> = [];
        let freed = 0;
        for (const row of candidates) {
          if (pendingBytes - freed + incoming <= maxBytes) break;
          victims.push({ ...row, eventClass });
          freed += row.sizeBytes;
        }
        evict(victims, "outbox full");
      }
    }
  };

  const sweepExpired = (): void => {
    if (!store) return;
    try {
      for (;;) {
        const expired = store.expiredBefore(clock.now() - maxAgeMs).filter((row) => !busyOrSettled(row.sequence));
        if (expired.length === 0) return;
        evict(expired, "older than the outbox's maximum age");
      }
    } catch (error) {
      storage.fail("outbox cannot evict expired events", error, HELD);
    }
  };

  const write = (entries: StoredOutboxEntry[], alsoInTransaction?: () => void): void => {
    const open = store as OutboxStore;
    makeRoom(entries.reduce((sum, entry) => sum + sizeOf(entry), 0));
    open.insert(entries, counters.last_sequence, alsoInTransaction);
    pendingCount += entries.length;
    pendingBytes += entries.reduce((sum, entry) => sum + sizeOf(entry), 0);
    try {
      // The database's counter now covers every number used, held ones included.
      floor.markHolding(false);
    } catch {
      // The floor stays "holding": a crash now costs a gap in the sequence, never a reused number.
    }
  };

  const hold = (entries: readonly StoredOutboxEntry[]): void => {
    for (const entry of entries) {
      for (const dropped of held.add(entry, inFlight)) {
        counters[dropped.eventClass === "telemetry" ? "evicted_telemetry" : "evicted_state"] += 1;
        countersDirty = true;
      }
    }
    scheduleRetry();
  };

  const flushHeld = (): void => {
    if (held.count === 0 || !isOpen()) return;
    try {
      write(held.all());
    } catch (error) {
      storage.fail("outbox cannot write to the database", error, HELD);
      return;
    }
    held.clear();
    noteStorageWorked();
    drainer?.notify();
  };

  const retryStorage = (): void => {
    // Deleting first: what it frees may be the room the held events need.
    persistBacklog();
    flushHeld();
    if (held.count > 0 || backlog.size > 0 || countersDirty) scheduleRetry();
  };

  function scheduleRetry(): void {
    if (cancelRetry || stopped) return;
    cancelRetry = timers.after(options.storageRetryMs ?? 5_000, () => {
      cancelRetry = null;
      retryStorage();
    });
  }

  const appendEntries = (inputs: readonly OutboxEntryInput[]): StoredOutboxEntry[] => {
    if (inputs.length === 0) return [];
    const before = counters.last_sequence;
    const refuse = (what: string, error: unknown): never => {
      // Nobody has seen these numbers: they are handed out again, to the next event accepted.
      counters.last_sequence = before;
      storage.fail(what, error, "events are refused until it can: a number that could be reused is never handed out");
      throw new OutboxRefusedError(inputs.length, error);
    };
    try {
      floor.cover(before + inputs.length);
    } catch (error) {
      refuse("outbox cannot reserve sequence numbers", error);
    }
    const createdAtMs = clock.now();
    const entries = inputs.map(
      (input, index): StoredOutboxEntry => ({ ...input, sequence: before + index + 1, createdAtMs }),
    );
    counters.last_sequence = before + inputs.length;
    let stored = false;
    if (held.count === 0 && store) {
      try {
        write(entries);
        stored = true;
        noteStorageWorked();
      } catch (error) {
        storage.fail("outbox cannot write to the database", error, HELD);
      }
    }
    if (!stored) {
      // Behind events already held: keep the order. The floor must say so before anyone sees these numbers.
      try {
        floor.markHolding(true);
      } catch (error) {
        refuse("outbox cannot mark events as held in the sequence floor", error);
      }
      hold(entries);
    }
    drainer?.notify();
    return entries;
  };

  /**
   * Appends `inputs` only if the database takes them now (never held in memory), with `also` in the
   * same transaction: a command's result and its settlement are stored together or not at all.
   * Throws `OutboxStorageUnavailableError` (or the database's error) when they cannot be.
   */
  const appendDurablyWith = (
    inputs: readonly OutboxEntryInput[],
    also: (open: OutboxStore) => void,
  ): StoredOutboxEntry[] => {
    if (!isOpen() || held.count > 0 || !store) {
      throw new OutboxStorageUnavailableError(storage.message ?? "events are held in memory until the disk takes them");
    }
    const open = store;
    if (inputs.length === 0) {
      open.transaction(() => also(open));
      return [];
    }
    const before = counters.last_sequence;
    floor.cover(before + inputs.length);
    const createdAtMs = clock.now();
    const entries = inputs.map(
      (input, index): StoredOutboxEntry => ({ ...input, sequence: before + index + 1, createdAtMs }),
    );
    counters.last_sequence = before + inputs.length;
    try {
      write(entries, () => also(open));
    } catch (error) {
      // Nobody has seen these numbers: they are handed out again, to the next event accepted.
      counters.last_sequence = before;
      throw error;
    }
    noteStorageWorked();
    drainer?.notify();
    return entries;
  };
  const openTables = (): OutboxStore => {
    if (!isOpen() || !store) throw new OutboxStorageUnavailableError(storage.message ?? "the database is not open");
    return store;
  };
  const commands = createCommandInbox({ tables: openTables, appendDurablyWith, clock });
  const tasks = createTaskLedger({ tables: openTables, clock });

  let sequenceSkip: OutboxStats["sequenceSkip"] = null;
  /** The outbox life this run numbers in (X-Outbox-ID on every event). */
  let outboxId = "";
  const start = (): void => {
    const fate = tryOpen();
    const databaseLastSequence = counters.last_sequence;
    counters.last_sequence = restartSequence({ ...lastRun, database: fate, databaseLastSequence, bootId, durability });
    outboxId = outboxIdFor(lastRun.record, counters.last_sequence);
    const known = Math.max(databaseLastSequence, lastRun.record?.base ?? lastRun.legacyFloor ?? 0);
    if (counters.last_sequence > known) {
      sequenceSkip = { after: known, through: counters.last_sequence };
      logger.warn(
        { from: known, to: counters.last_sequence },
        "outbox sequence continues past what the last run reserved: it may have lost events (a crash while events were only in memory, a power cut, or a lost database)",
      );
    }
    try {
      floor.begin(counters.last_sequence, outboxId);
    } catch (error) {
      storage.fail(
        "outbox cannot write the sequence floor",
        error,
        "events are refused until it can: a number that could be reused is never handed out",
      );
    }
    persistBacklog();
    sweepExpired();
  };

  const stopSweeping = timers.every(AGE_SWEEP_MS, sweepExpired);
  start();

  const source: DrainSource = {
    nextBatch(limit) {
      const batch = store ? unsettledStored(store, limit) : [];
      // Held events are newer than every stored one: they follow, and go out while the disk is full.
      if (batch.length < limit) batch.push(...held.first(limit - batch.length));
      for (const entry of batch) inFlight.add(entry.sequence);
      return batch;
    },
    settle(delivered, rejected) {
      try {
        // A batch retried whole: nothing to record, but it is no longer in flight (evictable again).
        if (delivered.length === 0 && rejected.length === 0) return;
        const settleStored = (entry: StoredOutboxEntry): void => {
          pendingCount -= 1;
          pendingBytes -= sizeOf(entry);
        };
        for (const entry of delivered) {
          if (!held.take(entry.sequence)) {
            settleStored(entry);
            backlog.addDelivered(entry.sequence);
          }
          counters.delivered += 1;
        }
        const failedAtMs = clock.now();
        for (const { entry, reason } of rejected) {
          if (!held.take(entry.sequence)) settleStored(entry);
          backlog.addRejected({ entry, reason, failedAtMs });
          counters.dead_letters += 1;
        }
        countersDirty = true;
        persistBacklog();
      } finally {
        inFlight.clear();
      }
    },
  };

  return {
    commands,
    tasks,
    append(input) {
      return appendEntries([input])[0] as StoredOutboxEntry;
    },
    appendBatch(inputs) {
      return appendEntries(inputs);
    },
    stats() {
      let storedOldest: number | null = null;
      try {
        storedOldest = store ? (unsettledStored(store, 1)[0]?.createdAtMs ?? null) : null;
      } catch {
        storedOldest = null;
      }
      const heldOldest = held.oldestCreatedAtMs;
      const oldest =
        storedOldest === null ? heldOldest : heldOldest === null ? storedOldest : Math.min(storedOldest, heldOldest);
      return {
        pendingCount: pendingCount + held.count,
        pendingBytes: pendingBytes + held.bytes,
        oldestPendingAgeMs: oldest === null ? null : Math.max(0, clock.now() - oldest),
        lastSequence: counters.last_sequence,
        deliveredCount: counters.delivered,
        evictedTelemetry: counters.evicted_telemetry,
        evictedState: counters.evicted_state,
        deadLetters: counters.dead_letters,
        heldInMemory: held.count,
        sequenceSkip,
        lastError: storage.message,
        deliveryProblem: drainer?.retryReason ?? null,
      };
    },
    start(publisher) {
      if (drainer) return;
      drainer = startDrainer({ source, publisher, logger, batchSize, maxInFlight, timers, outboxId });
    },
    wake() {
      drainer?.wake();
    },
    async stop() {
      stopped = true;
      stopSweeping();
      cancelRetry?.();
      await drainer?.stop();
      drainer = null;
      retryStorage();
      if (held.count > 0)
        logger.error(
          { lost: held.count, firstSequence: held.firstSequence },
          "outbox stopping with events it could not store: they are lost (their numbers are never reused)",
        );
      if (backlog.size > 0)
        logger.warn(
          { settled: backlog.size },
          "outbox stopping before the database took every delivery: the next start skips them",
        );
      let through = 0;
      try {
        through = settledThrough() ?? 0;
      } catch (error) {
        logger.debug({ err: error }, "cannot tell how far events are settled");
      }
      try {
        floor.close(counters.last_sequence, through);
      } catch (error) {
        logger.error(
          { err: error },
          "outbox cannot write the sequence floor at stop: the next start leaves a gap in the sequence",
        );
      }
      store?.close();
      store = null;
    },
    updateLimits(limits) {
      if (limits.maxBytes !== undefined) maxBytes = limits.maxBytes;
      if (limits.maxAgeMs !== undefined) maxAgeMs = limits.maxAgeMs;
      if (store) {
        try {
          makeRoom(0);
        } catch (error) {
          storage.fail("outbox cannot evict to the new limit", error, HELD);
        }
      }
      sweepExpired();
    },
  };
}
