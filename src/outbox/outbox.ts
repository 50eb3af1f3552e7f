import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";
import { startDrainer, type Drainer } from "./drainer.ts";
import { SequenceFloor } from "./sequence-floor.ts";
import { OutboxStore, sizeOf, type CounterName, type Durability } from "./sqlite-store.ts";
import type { EventPublisher, OutboxEntryInput, OutboxStats, StoredOutboxEntry } from "./types.ts";

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
}

export interface Outbox {
  /** Stores the event (per the durability policy) with the next device sequence; never throws for disk faults. */
  append(input: OutboxEntryInput): StoredOutboxEntry;
  /** Stores several events in one transaction (one sync under "full" durability). */
  appendBatch(inputs: readonly OutboxEntryInput[]): StoredOutboxEntry[];
  stats(): OutboxStats;
  /** Starts delivering through `publisher`, in the background. */
  start(publisher: EventPublisher): void;
  /** The link is back: retry now. */
  wake(): void;
  /** Stops delivery (in-flight publishes settle first) and closes the database. */
  stop(): Promise<void>;
  updateLimits(limits: { maxBytes?: number; maxAgeMs?: number }): void;
}

const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;
const AGE_SWEEP_MS = 60_000;

function sqliteCode(error: unknown): number | undefined {
  const code = (error as { errcode?: unknown }).errcode;
  return typeof code === "number" ? code & 0xff : undefined;
}

/**
 * The durable outbox: every event but the heartbeat is stored here before anything else happens
 * to it, and leaves only when JetStream acknowledged it (see sqlite-store.ts for what each
 * durability setting promises, and drainer.ts for delivery). Faults of the disk never crash the
 * agent and never cost an event already stored: new events wait in memory (bounded, counted)
 * until the database can be written again.
 */
export function openOutbox(options: OutboxOptions): Outbox {
  const { clock, logger, dataDir } = options;
  const durability = options.durability ?? "normal";
  const batchSize = options.batchSize ?? 500;
  const maxInFlight = options.maxInFlight ?? 128;
  const maxHeldBytes = options.maxHeldBytes ?? 64 * 1024 * 1024;
  let maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  let maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  const path = join(dataDir, OUTBOX_FILE);
  const floor = new SequenceFloor(join(dataDir, "outbox.sequence"));

  let store: OutboxStore | null = null;
  const counters: Record<CounterName, number> = { last_sequence: 0, delivered: 0, evicted_telemetry: 0, evicted_state: 0, dead_letters: 0 };
  let pendingCount = 0;
  let pendingBytes = 0;
  let held: StoredOutboxEntry[] = [];
  let heldBytes = 0;
  let lastError: string | null = null;
  let drainer: Drainer | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let stopped = false;
  const inFlight = new Set<number>();

  const fault = (what: string, error: unknown): void => {
    const message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
    if (message !== lastError) logger.error({ err: error }, `outbox ${what}; events are kept in memory and writing is retried`);
    lastError = message;
  };

  const setAside = (reason: unknown): void => {
    const aside = `${path}.corrupt-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`;
    for (const suffix of ["", "-wal", "-shm"]) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    logger.error({ err: reason, setAside: aside }, "outbox database is damaged: set aside for inspection, starting a new one");
    // Events in the damaged file are lost to us; jump the sequence past any it may have used, so
    // no number is ever reused and the platform sees the gap.
    counters.last_sequence = Math.max(counters.last_sequence, floor.safeRestartPoint());
  };

  const tryOpen = (): boolean => {
    if (store) return true;
    try {
      mkdirSync(dataDir, { recursive: true });
      const databaseExisted = existsSync(path);
      let opened: OutboxStore;
      try {
        opened = new OutboxStore(path, durability);
      } catch (error) {
        const code = sqliteCode(error);
        if (code !== SQLITE_CORRUPT && code !== SQLITE_NOTADB) throw error;
        setAside(error);
        opened = new OutboxStore(path, durability);
      }
      const stored = opened.readCounters();
      for (const name of Object.keys(counters) as CounterName[]) counters[name] = Math.max(counters[name], stored[name]);
      // A floor file without its database means the database was lost: never reuse its numbers.
      const floorValue = floor.read();
      counters.last_sequence = Math.max(counters.last_sequence, databaseExisted || floorValue === 0 ? floorValue : floor.safeRestartPoint());
      const totals = opened.pendingTotals();
      pendingCount = totals.count;
      pendingBytes = totals.bytes;
      store = opened;
      return true;
    } catch (error) {
      fault("cannot open the database", error);
      return false;
    }
  };

  const evict = (victims: ReadonlyArray<{ sequence: number; eventClass: "telemetry" | "state"; sizeBytes: number }>, why: string): void => {
    if (!store || victims.length === 0) return;
    const next = { ...counters };
    for (const victim of victims) next[victim.eventClass === "telemetry" ? "evicted_telemetry" : "evicted_state"] += 1;
    store.evict(victims.map((victim) => victim.sequence), next);
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
        const candidates = store.oldestOfClass(eventClass, 256).filter((row) => !inFlight.has(row.sequence));
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
        const expired = store.expiredBefore(clock.now() - maxAgeMs).filter((row) => !inFlight.has(row.sequence));
        if (expired.length === 0) return;
        evict(expired, "older than the outbox's maximum age");
      }
    } catch (error) {
      fault("cannot evict expired events", error);
    }
  };

  const write = (entries: StoredOutboxEntry[]): void => {
    const open = store as OutboxStore;
    makeRoom(entries.reduce((sum, entry) => sum + sizeOf(entry), 0));
    open.insert(entries, counters.last_sequence);
    pendingCount += entries.length;
    pendingBytes += entries.reduce((sum, entry) => sum + sizeOf(entry), 0);
  };

  const hold = (entry: StoredOutboxEntry): void => {
    held.push(entry);
    heldBytes += sizeOf(entry);
    while (heldBytes > maxHeldBytes && held.length > 1) {
      const victimIndex = Math.max(0, held.findIndex((candidate) => candidate.eventClass === "telemetry"));
      const [victim] = held.splice(victimIndex, 1);
      if (!victim) break;
      heldBytes -= sizeOf(victim);
      counters[victim.eventClass === "telemetry" ? "evicted_telemetry" : "evicted_state"] += 1;
    }
    scheduleRetry();
  };

  const flushHeld = (): void => {
    if (held.length === 0 || !tryOpen()) return;
    try {
      write(held);
      held = [];
      heldBytes = 0;
      lastError = null;
      logger.info("outbox storage is writable again; events held in memory are stored");
      drainer?.notify();
    } catch (error) {
      fault("cannot write to the database", error);
    }
  };

  const scheduleRetry = (): void => {
    if (retryTimer || stopped) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      flushHeld();
      if (held.length > 0) scheduleRetry();
    }, options.storageRetryMs ?? 5_000);
    retryTimer.unref();
  };

  const appendEntries = (inputs: readonly OutboxEntryInput[]): StoredOutboxEntry[] => {
    const createdAtMs = clock.now();
    const entries = inputs.map((input): StoredOutboxEntry => {
      counters.last_sequence += 1;
      return { ...input, sequence: counters.last_sequence, createdAtMs };
    });
    floor.observe(counters.last_sequence);
    if (held.length > 0 || !store) {
      // Behind events already held: keep the order, and let the retry timer try the disk again.
      for (const entry of entries) hold(entry);
    } else {
      try {
        write(entries);
      } catch (error) {
        fault("cannot write to the database", error);
        for (const entry of entries) hold(entry);
      }
    }
    drainer?.notify();
    return entries;
  };

  const sweepTimer = setInterval(sweepExpired, AGE_SWEEP_MS);
  sweepTimer.unref();
  tryOpen();
  sweepExpired();

  const source = {
    nextBatch(limit: number): StoredOutboxEntry[] {
      if (!store) return [];
      const batch = store.batchAfter(0, limit);
      for (const entry of batch) inFlight.add(entry.sequence);
      return batch;
    },
    settle(delivered: readonly StoredOutboxEntry[], rejected: ReadonlyArray<{ entry: StoredOutboxEntry; reason: string }>): void {
      try {
        if (!store) return;
        const next = { ...counters, delivered: counters.delivered + delivered.length, dead_letters: counters.dead_letters + rejected.length };
        store.settle(delivered.map((entry) => entry.sequence), rejected, clock.now(), next);
        counters.delivered = next.delivered;
        counters.dead_letters = next.dead_letters;
        const settledEntries = [...delivered, ...rejected.map((item) => item.entry)];
        pendingCount -= settledEntries.length;
        pendingBytes -= settledEntries.reduce((sum, entry) => sum + sizeOf(entry), 0);
      } finally {
        inFlight.clear();
      }
    },
  };

  return {
    append(input) {
      return appendEntries([input])[0] as StoredOutboxEntry;
    },
    appendBatch(inputs) {
      return appendEntries(inputs);
    },
    stats() {
      let oldestCreatedAtMs: number | null = null;
      try {
        oldestCreatedAtMs = store?.oldestCreatedAtMs() ?? null;
      } catch {
        oldestCreatedAtMs = null;
      }
      const heldOldest = held[0]?.createdAtMs ?? null;
      const oldest = oldestCreatedAtMs === null ? heldOldest : heldOldest === null ? oldestCreatedAtMs : Math.min(oldestCreatedAtMs, heldOldest);
      return {
        pendingCount: pendingCount + held.length,
        pendingBytes: pendingBytes + heldBytes,
        oldestPendingAgeMs: oldest === null ? null : Math.max(0, clock.now() - oldest),
        lastSequence: counters.last_sequence,
        deliveredCount: counters.delivered,
        evictedTelemetry: counters.evicted_telemetry,
        evictedState: counters.evicted_state,
        deadLetters: counters.dead_letters,
        heldInMemory: held.length,
        lastError,
      };
    },
    start(publisher) {
      if (drainer) return;
      drainer = startDrainer({ source, publisher, logger, batchSize, maxInFlight });
    },
    wake() {
      drainer?.wake();
    },
    async stop() {
      stopped = true;
      clearInterval(sweepTimer);
      if (retryTimer) clearTimeout(retryTimer);
      await drainer?.stop();
      drainer = null;
      flushHeld();
      if (held.length > 0) logger.error({ lost: held.length }, "outbox stopping with events it could not store: they are lost");
      floor.persist(counters.last_sequence);
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
          fault("cannot evict to the new limit", error);
        }
      }
      sweepExpired();
    },
  };
}
