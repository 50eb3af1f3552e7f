import { existsSync, renameSync } from "node:fs";
import type { Cancel, Clock, Logger, Timers } from "../runtime/index.ts";
import { damagedFileName, FaultLatch, makePrivateDir, SqliteResult, sqliteResultCode } from "../runtime/index.ts";
import { type Durability, OutboxStore } from "./sqlite-store.ts";

/** What a database fault means for events while it lasts. */
export const HELD_MEANWHILE = "events are kept in memory (and delivered from there) and writing is retried";

export interface OutboxDatabaseOptions {
  readonly path: string;
  readonly dataDir: string;
  readonly durability: Durability;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly logger: Logger;
  /** How often to try the disk again after a write failed. */
  readonly retryMs: number;
  /** Runs on each newly opened database before anything uses it; a throw is a fault like the open's own. */
  readonly opened: (store: OutboxStore) => void;
  /** The disk is tried again (`retryLater`). */
  readonly retry: () => void;
}

/**
 * The outbox's database and its health: opened (a damaged one set aside for inspection and a new
 * one started), opened again once a fault passes, and tried again on a timer while something waits
 * for the disk. A fault is logged once when it starts and once when it ends, and shown in
 * `problem` meanwhile.
 */
export class OutboxDatabase {
  readonly #options: OutboxDatabaseOptions;
  readonly #latch: FaultLatch;
  #store: OutboxStore | null = null;
  #openedOnce = false;
  #cancelRetry: Cancel | null = null;
  #stopped = false;

  constructor(options: OutboxDatabaseOptions) {
    this.#options = options;
    this.#latch = new FaultLatch(options.logger, options.clock);
  }

  /** The open database, null while it cannot be opened. */
  get store(): OutboxStore | null {
    return this.#store;
  }

  /** The fault now, null when there is none. */
  get problem(): string | null {
    return this.#latch.message;
  }

  /** Opens it; says whether it is the one the last run wrote ("kept"). */
  open(): "kept" | "lost" | "unavailable" {
    const { path, durability } = this.#options;
    try {
      makePrivateDir(this.#options.dataDir);
      let fate: "kept" | "lost" = existsSync(path) ? "kept" : "lost";
      let opened: OutboxStore;
      try {
        opened = new OutboxStore(path, durability);
      } catch (error) {
        const code = sqliteResultCode(error);
        if (code !== SqliteResult.corrupt && code !== SqliteResult.notADatabase) throw error;
        this.#setAside(error);
        fate = "lost";
        opened = new OutboxStore(path, durability);
      }
      // Commands the last run left running were cut short by a crash: once per run, before any runs again.
      if (!this.#openedOnce) opened.commands.markInterrupted();
      this.#openedOnce = true;
      this.#options.opened(opened);
      this.#store = opened;
      return fate;
    } catch (error) {
      this.fail("outbox cannot open the database", error);
      return "unavailable";
    }
  }

  /** The database, opened first if it is not; null while it cannot be. */
  ensureOpen(): OutboxStore | null {
    if (!this.#store) this.open();
    return this.#store;
  }

  /** A fault starts (or goes on): logged once, with what it means for events. */
  fail(what: string, error: unknown, meanwhile: string = HELD_MEANWHILE): void {
    this.#latch.fail(what, error, meanwhile);
  }

  /** The fault ended (logged once). */
  recover(message: string): void {
    this.#latch.recover(message);
  }

  /** Tries the disk again after `retryMs` (once, however often asked meanwhile). */
  retryLater(): void {
    if (this.#cancelRetry || this.#stopped) return;
    this.#cancelRetry = this.#options.timers.after(this.#options.retryMs, () => {
      this.#cancelRetry = null;
      this.#options.retry();
    });
  }

  /** No more retries; the database stays open until `close`. */
  stopRetrying(): void {
    this.#stopped = true;
    this.#cancelRetry?.();
  }

  close(): void {
    this.#store?.close();
    this.#store = null;
  }

  #setAside(reason: unknown): void {
    const { path, clock, logger } = this.#options;
    const aside = damagedFileName(path, () => clock.now());
    for (const suffix of ["", "-wal", "-shm"]) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    logger.error(
      { err: reason, setAside: aside },
      "outbox database is damaged: set aside for inspection, starting a new one",
    );
  }
}
