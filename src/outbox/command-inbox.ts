import type { Clock } from "../runtime/index.ts";
import type { CommandRow, InboxMessage } from "./command-inbox-tables.ts";
import type { OutboxStore } from "./sqlite-store.ts";
import type { OutboxEntryInput, StoredOutboxEntry } from "./types.ts";

export type { CommandRow, CommandState, InboxMessage } from "./command-inbox-tables.ts";

/**
 * The durable inbox of platform commands (the transactional outbox's twin): what the agent reads
 * from a command stream is stored here, with the feed's new position, before any work starts; a
 * command's work is settled here together with its result event. So each stored command message is
 * taken exactly once across restarts, kill -9 and server restarts, and its result is stored exactly
 * once. Every method throws `OutboxStorageUnavailableError` (or the database's own error) when the
 * database cannot be written: nothing moves, and the caller tries again later.
 */
export interface CommandInbox {
  /** The stream sequence of the last message taken from the feed; null when the feed was never read. */
  position(feed: string): number | null;
  /** Stores messages taken from a feed and moves its position, in one transaction; returns how many were new. */
  accept(feed: string, messages: readonly InboxMessage[], position: number): number;
  /** A stream was made anew: its settled commands are forgotten (its new messages reuse their sequences). */
  streamRecreated(stream: string): void;
  /** Pending commands whose wait is over, oldest first. */
  ready(limit: number): CommandRow[];
  /** Commands a crash, kill -9 or power loss cut short in an earlier run (never run again: reported). */
  interrupted(): CommandRow[];
  /** Marks the command's work as begun (so a crash from here on leaves it `interrupted`). */
  begin(id: number): void;
  /** Puts the command back, to be taken again at `notBeforeMs` (0: as soon as it is asked for). */
  retryAt(id: number, notBeforeMs: number): void;
  /** Settles the command with `outcome`, and stores its result event (if any) in the same transaction. */
  settle(id: number, outcome: string, result: OutboxEntryInput | null): StoredOutboxEntry | null;
  /** Whether a newer message of the same feed is stored (then this one is superseded). */
  superseded(row: CommandRow): boolean;
  /** How many commands wait, run, or were cut short and not reported yet. */
  counts(): { pending: number; running: number; interrupted: number };
  /** How many commands of these feeds wait (stored, not begun). */
  pendingIn(feeds: readonly string[]): number;
  /** Whether this database was written by a version that read commands through durable consumers. */
  upgradedFromConsumers(): boolean;
}

export interface CommandInboxAccess {
  /** The open store; throws when the database cannot be used now. */
  tables(): OutboxStore;
  /** The outbox's append that never holds in memory, with extra writes in its transaction. */
  appendDurablyWith(inputs: readonly OutboxEntryInput[], also: (open: OutboxStore) => void): StoredOutboxEntry[];
  readonly clock: Clock;
}

export function createCommandInbox(access: CommandInboxAccess): CommandInbox {
  const { clock } = access;
  return {
    position: (feed) => access.tables().commands.position(feed),
    accept(feed, messages, position) {
      const open = access.tables();
      let added = 0;
      open.transaction(() => {
        added = open.commands.accept(feed, messages, position, clock.now());
      });
      return added;
    },
    streamRecreated(stream) {
      const open = access.tables();
      open.transaction(() => open.commands.forgetSettled(stream));
    },
    ready: (limit) => access.tables().commands.ready(clock.now(), limit),
    interrupted: () => access.tables().commands.inState("interrupted"),
    begin(id) {
      const open = access.tables();
      open.transaction(() => open.commands.start(id));
    },
    retryAt(id, notBeforeMs) {
      const open = access.tables();
      open.transaction(() => open.commands.retryAt(id, notBeforeMs));
    },
    settle(id, outcome, result) {
      const stored = access.appendDurablyWith(result ? [result] : [], (open) =>
        open.commands.settle(id, outcome, clock.now()),
      );
      return stored[0] ?? null;
    },
    superseded: (row) => access.tables().commands.newerInFeed(row.feed, row.stream, row.streamSequence),
    upgradedFromConsumers: () => access.tables().commands.predatesInbox,
    counts: () => access.tables().commands.counts(),
    pendingIn: (feeds) => access.tables().commands.pendingIn(feeds),
  };
}
