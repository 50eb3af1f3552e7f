export type { CommandInbox, CommandRow, CommandState, InboxMessage } from "./command-inbox.ts";
export {
  OUTBOX_FILE,
  type Outbox,
  type OutboxOptions,
  OutboxRefusedError,
  OutboxStorageUnavailableError,
  openOutbox,
  SEQUENCE_FLOOR_FILE,
} from "./outbox.ts";
export { type OutboxListingEntry, OutboxNotFoundError, OutboxReader } from "./outbox-reader.ts";
export type { EventPublisher, PublishOutcome } from "./publisher.ts";
export { SequenceFloorError } from "./sequence-floor.ts";
export { type Durability, RECENTLY_SENT_LIMIT } from "./sqlite-store.ts";
export type { KeptCancel, TaskLedger, TaskRecording, TaskRunRecord } from "./task-ledger.ts";
export * from "./types.ts";
